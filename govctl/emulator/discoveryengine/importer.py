"""ImportDocuments at work: reading a bucket on fake-gcs-server into a data store.

An import runs on a thread. It lists the objects that match the request's URIs (``*``, ``?``
and ``**`` as gsutil reads them), turns each text object into an unstructured ``Document``
(its id from the URI, :func:`document_id`) and keeps its text for search. The pending
operation's metadata carries the success and failure counts as it goes; it ends with an
``ImportDocumentsResponse`` and at most ten error samples.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
from typing import Any
from urllib.parse import quote, urlencode

from google.cloud import discoveryengine_v1 as de
from google.rpc import code_pb2, status_pb2

from govctl.emulator import storage
from govctl.emulator.discoveryengine.resources import DiscoveryEngineResources

Mode = de.ImportDocumentsRequest.ReconciliationMode
# GcsSource: "at most 100,000 files if data_schema is content", each up to 100 MB.
MAX_FILES = 100_000
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_ERROR_SAMPLES = 10
# Pause before an import reads anything, so a client sees it running as in production.
START_SECONDS = 0.05
# The operation's counts are refreshed at most this often (and at the end).
PROGRESS_SECONDS = 0.1


def document_id(uri: str) -> str:
    """The id Discovery Engine gives an unstructured document imported from ``uri``: the first
    128 bits of SHA256(URI) as hex (GcsSource.data_schema "content")."""
    return hashlib.sha256(uri.encode()).hexdigest()[:32]


def _glob(pattern: str) -> re.Pattern[str]:
    """An object-name wildcard as gsutil reads it: ``**`` any characters, ``*`` and ``?`` within
    one path segment."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


class _ImportFailed(Exception):
    pass


class _Progress:
    """An import's running counts: its operation's metadata, error samples, documents seen."""

    def __init__(self, meta: Any) -> None:
        self.meta = meta
        self.samples: list[status_pb2.Status] = []
        self.seen: set[str] = set()
        self.said = time.monotonic()

    def failed(self, err: _ImportFailed) -> None:
        self.meta.failure_count += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(err)))

    def due(self) -> bool:
        """Whether the operation's counts are due a refresh."""
        if time.monotonic() - self.said < PROGRESS_SECONDS:
            return False
        self.said = time.monotonic()
        return True


class Importer(DiscoveryEngineResources):
    def _import(
        self, op_name: str, store_name: str, patterns: list[tuple[str, str]], mode: int
    ) -> None:
        meta = de.ImportDocumentsMetadata.pb()()
        meta.CopyFrom(de.ImportDocumentsMetadata.pb(self._meta(op_name)))
        progress = _Progress(meta)
        if self._stopping.wait(START_SECONDS):
            return
        try:
            if not self._import_all(op_name, store_name, patterns, progress):
                return  # the emulator is stopping
            if mode == Mode.FULL:
                self._forget_unseen(store_name, progress.seen)
        except _ImportFailed as err:
            self._end(op_name, meta, error=(code_pb2.INVALID_ARGUMENT, str(err)))
            return
        except Exception as err:  # a bug must not leave the operation running for ever
            self._end(op_name, meta, error=(code_pb2.INTERNAL, f"emulator error: {err!r}"))
            raise
        response = de.ImportDocumentsResponse.pb()(error_samples=progress.samples)
        self._end(op_name, meta, response=response)

    def _import_all(
        self, op_name: str, store_name: str, patterns: list[tuple[str, str]], progress: _Progress
    ) -> bool:
        """Import every matching object; False when the emulator stopped first."""
        objects = [o for bucket, pattern in patterns for o in self._match(bucket, pattern)]
        if len(objects) > MAX_FILES:
            raise _ImportFailed(
                f"{len(objects)} files match: at most {MAX_FILES} can be imported at a time."
            )
        progress.meta.total_count = len(objects)
        self.operations.update_metadata(op_name, progress.meta)
        for bucket, obj in objects:
            if self._stopping.is_set():
                return False
            uri = f"gs://{bucket}/{obj['name']}"
            try:
                doc, body = self._document(store_name, bucket, obj, uri)
            except _ImportFailed as err:
                progress.failed(err)
            else:
                self._keep(store_name, doc, body)
                progress.seen.add(doc.id)
                progress.meta.success_count += 1
            if progress.due():
                progress.meta.update_time.FromDatetime(self.cloud.clock.now())
                self.operations.update_metadata(op_name, progress.meta)
        return True

    def _keep(self, store_name: str, doc: Any, body: str) -> None:
        with self._cond:
            if store_name not in self._stores:
                raise _ImportFailed(f"Data store {store_name} was deleted.")
            self._docs[store_name][doc.id] = doc
            self._texts[store_name][doc.id] = body

    def _forget_unseen(self, store_name: str, seen: set[str]) -> None:
        """A FULL import deletes the documents it did not import."""
        with self._cond:
            for gone in set(self._docs.get(store_name, {})) - seen:
                del self._docs[store_name][gone]
                self._texts[store_name].pop(gone, None)

    def _meta(self, op_name: str) -> de.ImportDocumentsMetadata:
        with self.lock:
            op = self.operations.require(op_name)
            meta: de.ImportDocumentsMetadata = de.ImportDocumentsMetadata.deserialize(
                op.metadata.value
            )
            return meta

    def _storage(self, path: str) -> bytes:
        base = self.cloud.storage_url
        if not base:
            raise _ImportFailed("the emulator runs without Cloud Storage")
        return storage.read(base, path)

    def _match(self, bucket: str, pattern: str) -> list[tuple[str, dict[str, Any]]]:
        """The bucket's objects whose names match ``pattern`` (one listing, paged)."""
        prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        regex = _glob(pattern)
        found: list[tuple[str, dict[str, Any]]] = []
        token = ""
        while True:
            query = {"prefix": prefix, "maxResults": "1000"}
            if token:
                query["pageToken"] = token
            try:
                page = json.loads(
                    self._storage(f"/storage/v1/b/{quote(bucket, safe='')}/o?{urlencode(query)}")
                )
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    raise _ImportFailed(f"Cloud Storage bucket {bucket} does not exist.") from None
                raise _ImportFailed(f"listing gs://{bucket}: HTTP {err.code}") from None
            except OSError as err:
                raise _ImportFailed(f"listing gs://{bucket}: {err}") from None
            found += [(bucket, o) for o in page.get("items", []) if regex.fullmatch(o["name"])]
            token = page.get("nextPageToken", "")
            if not token:
                return found

    def _document(
        self, store_name: str, bucket: str, obj: dict[str, Any], uri: str
    ) -> tuple[Any, str]:
        """The Document for one object, and its text; _ImportFailed says why not."""
        mime = str(obj.get("contentType") or "").split(";")[0].strip().lower()
        if not (mime.startswith("text/") or mime in ("application/json", "application/xml")):
            raise _ImportFailed(f"{uri}: unsupported MIME type {mime or '(none)'!r}.")
        if int(obj.get("size") or 0) > MAX_FILE_BYTES:
            raise _ImportFailed(f"{uri}: the file is larger than 100 MB.")
        try:
            data = self._storage(storage.object_path(bucket, obj["name"]))
        except (urllib.error.HTTPError, OSError) as err:
            raise _ImportFailed(f"{uri}: cannot read the object: {err}") from None
        try:
            body = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _ImportFailed(f"{uri}: the content is not valid UTF-8 text.") from None
        doc_id = document_id(uri)
        doc = de.Document.pb()()
        doc.name = f"{store_name}/branches/0/documents/{doc_id}"
        doc.id = doc_id
        doc.content.uri = uri
        doc.content.mime_type = mime
        doc.index_time.FromDatetime(self.cloud.clock.now())
        doc.index_status.index_time.FromDatetime(self.cloud.clock.now())
        return doc, body
