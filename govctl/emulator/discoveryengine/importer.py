"""ImportDocuments at work: reading a bucket on fake-gcs-server into a data store.

An import runs on a thread. With ``data_schema`` ``content`` each object that matches the
request's URIs becomes an unstructured document (its id from the URI, :func:`document_id`);
with ``document`` (the default) each line of each matching JSONL file is a ``Document`` with
its own id, ``structData`` and ``content`` (a ``gs://`` URI or raw bytes). What the service
refuses — a MIME type it does not take, a file over its size limit, an id that breaks the
documented pattern — is a per-document failure: counted in the operation's
``ImportDocumentsMetadata.failure_count`` and sampled (at most ten) in the response's
``error_samples``; too many files or documents fail the whole operation (:mod:`.limits`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from google.cloud import discoveryengine_v1 as de
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from govctl.emulator import storage
from govctl.emulator.discoveryengine import limits
from govctl.emulator.discoveryengine.resources import DiscoveryEngineResources

Mode = de.ImportDocumentsRequest.ReconciliationMode
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
    """An object-name wildcard: ``*`` and ``?`` within one path segment (the request check
    allows them in the last segment only)."""
    out = ""
    for char in pattern:
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        else:
            out += re.escape(char)
    return re.compile(out)


@dataclass(frozen=True)
class ImportJob:
    """What one ImportDocuments request asked for, checked."""

    store: str
    schema: str  # content | document
    patterns: tuple[tuple[str, str], ...]  # (bucket, object name or pattern)
    mode: int


class _ImportFailed(Exception):
    pass


@dataclass(frozen=True)
class _Line:
    """One line of a JSONL manifest: a Document."""

    file: str  # gs:// URI of the manifest
    number: int
    text: str


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
    def _import(self, op_name: str, job: ImportJob) -> None:
        meta = de.ImportDocumentsMetadata.pb()()
        meta.CopyFrom(de.ImportDocumentsMetadata.pb(self._meta(op_name)))
        progress = _Progress(meta)
        if self._stopping.wait(START_SECONDS):
            return
        try:
            if not self._import_all(op_name, job, progress):
                return  # the emulator is stopping
            if job.mode == Mode.FULL:
                self._forget_unseen(job.store, progress.seen)
        except _ImportFailed as err:
            self._end(op_name, meta, error=(code_pb2.INVALID_ARGUMENT, str(err)))
            return
        except Exception as err:  # a bug must not leave the operation running for ever
            self._end(op_name, meta, error=(code_pb2.INTERNAL, f"emulator error: {err!r}"))
            raise
        response = de.ImportDocumentsResponse.pb()(error_samples=progress.samples)
        self._end(op_name, meta, response=response)

    def _import_all(self, op_name: str, job: ImportJob, progress: _Progress) -> bool:
        """Import every matching object or manifest line; False when the emulator stopped."""
        entries: list[Any] = self._objects(job) if job.schema == "content" else self._lines(job)
        progress.meta.total_count = len(entries)
        self.operations.update_metadata(op_name, progress.meta)
        for entry in entries:
            if self._stopping.is_set():
                return False
            try:
                if isinstance(entry, _Line):
                    doc, body = self._manifest_document(job.store, entry)
                else:
                    doc, body = self._content_document(job.store, *entry)
            except _ImportFailed as err:
                progress.failed(err)
            else:
                self._keep(job.store, doc, body)
                progress.seen.add(doc.id)
                progress.meta.success_count += 1
            if progress.due():
                progress.meta.update_time.FromDatetime(self.cloud.clock.now())
                self.operations.update_metadata(op_name, progress.meta)
        return True

    # what an import reads ---------------------------------------------------------------------
    def _objects(self, job: ImportJob) -> list[tuple[str, dict[str, Any]]]:
        objects = [o for bucket, pattern in job.patterns for o in self._match(bucket, pattern)]
        if len(objects) > limits.MAX_CONTENT_FILES:
            raise _ImportFailed(
                f"{len(objects)} files match: at most {limits.MAX_CONTENT_FILES} can be "
                "imported at a time with data_schema 'content'."
            )
        return objects

    def _lines(self, job: ImportJob) -> list[_Line]:
        files = [o for bucket, pattern in job.patterns for o in self._match(bucket, pattern)]
        if len(files) > limits.MAX_DOCUMENT_FILES:
            raise _ImportFailed(
                f"{len(files)} files match: a request can contain at most "
                f"{limits.MAX_DOCUMENT_FILES} files with data_schema 'document'."
            )
        lines = [line for bucket, obj in files for line in self._manifest(bucket, obj["name"])]
        if len(lines) > limits.MAX_DOCUMENTS:
            raise _ImportFailed(
                f"{len(lines)} documents: at most {limits.MAX_DOCUMENTS} can be imported at a time."
            )
        return lines

    def _manifest(self, bucket: str, name: str) -> Iterator[_Line]:
        uri = f"gs://{bucket}/{name}"
        try:
            text = self._storage(storage.object_path(bucket, name)).decode("utf-8")
        except (urllib.error.HTTPError, OSError) as err:
            raise _ImportFailed(f"{uri}: cannot read the file: {err}") from None
        except UnicodeDecodeError:
            raise _ImportFailed(f"{uri}: the file is not UTF-8 JSON lines.") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield _Line(uri, number, line)

    def _storage(self, path: str) -> bytes:
        base = self.cloud.storage_url
        if not base:
            raise _ImportFailed("the emulator runs without Cloud Storage")
        return storage.read(base, path)

    def _match(self, bucket: str, pattern: str) -> list[tuple[str, dict[str, Any]]]:
        """The bucket's objects whose names match ``pattern`` (one listing, paged); a URI
        without a wildcard must name an object."""
        prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        regex = _glob(pattern)
        found: list[tuple[str, dict[str, Any]]] = []
        token = ""
        while True:
            query = {"prefix": prefix, "maxResults": "1000"}
            if token:
                query["pageToken"] = token
            page = self._list_page(bucket, query)
            found += [(bucket, o) for o in page.get("items", []) if regex.fullmatch(o["name"])]
            token = page.get("nextPageToken", "")
            if not token:
                break
        if not found and prefix == pattern:
            raise _ImportFailed(f"gs://{bucket}/{pattern} does not exist.")
        return found

    def _list_page(self, bucket: str, query: dict[str, str]) -> Any:
        try:
            return json.loads(
                self._storage(f"/storage/v1/b/{quote(bucket, safe='')}/o?{urlencode(query)}")
            )
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise _ImportFailed(f"Cloud Storage bucket {bucket} does not exist.") from None
            raise _ImportFailed(f"listing gs://{bucket}: HTTP {err.code}") from None
        except OSError as err:
            raise _ImportFailed(f"listing gs://{bucket}: {err}") from None

    def _linked(self, uri: str) -> bytes:
        """The bytes of the object at a ``gs://`` URI (one read: its size is its length)."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or not bucket or not name:
            raise _ImportFailed(f"content.uri {uri!r} is not a Cloud Storage URI (gs://…).")
        try:
            return self._storage(storage.object_path(bucket, name))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise _ImportFailed(f"{uri} does not exist.") from None
            raise _ImportFailed(f"{uri}: cannot read it: HTTP {err.code}") from None
        except OSError as err:
            raise _ImportFailed(f"{uri}: cannot read it: {err}") from None

    def _bytes(self, bucket: str, name: str, uri: str) -> bytes:
        try:
            return self._storage(storage.object_path(bucket, name))
        except (urllib.error.HTTPError, OSError) as err:
            raise _ImportFailed(f"{uri}: cannot read the object: {err}") from None

    # documents --------------------------------------------------------------------------------
    def _content_document(
        self, store_name: str, bucket: str, obj: dict[str, Any]
    ) -> tuple[Any, str]:
        """The Document for one object of a ``content`` import, and its text."""
        uri = f"gs://{bucket}/{obj['name']}"
        mime = _mime(str(obj.get("contentType") or ""))
        problem = limits.mime_problem(mime)
        if problem:
            raise _ImportFailed(f"{uri}: {problem}.")
        size = int(obj.get("size") or 0)
        limit = min(limits.size_limit(mime), limits.MAX_CONTENT_FILE_BYTES)
        if size > limit:
            raise _ImportFailed(f"{uri}: {_too_big(size, mime, limit)}")
        body = _text(self._bytes(bucket, obj["name"], uri), mime, uri)
        doc = de.Document.pb()()
        doc.id = document_id(uri)
        doc.content.uri = uri
        doc.content.mime_type = mime
        return self._indexed(store_name, doc), body

    def _manifest_document(self, store_name: str, line: _Line) -> tuple[Any, str]:
        """The Document on one line of a ``document`` import, and its text."""
        where = f"{line.file} line {line.number}"
        doc = _parse_document(line.text, where)
        problem = limits.id_problem(doc.id)
        if problem:
            raise _ImportFailed(f"{where}: {problem}.")
        where = f"{where} (document {doc.id})"
        if not doc.HasField("content"):
            raise _ImportFailed(
                f"{where}: no content; documents of a CONTENT_REQUIRED data store need "
                "content.uri or content.raw_bytes with content.mime_type."
            )
        mime = _mime(doc.content.mime_type)
        problem = limits.mime_problem(mime)
        if problem:
            raise _ImportFailed(f"{where}: {problem}.")
        data = self._content_bytes(doc.content, mime, where)
        body = _text(data, mime, where)
        if doc.json_data:
            try:
                json_format.Parse(doc.json_data, doc.struct_data)
            except json_format.ParseError as err:
                raise _ImportFailed(f"{where}: json_data is not a JSON object: {err}") from None
        return self._indexed(store_name, doc), body

    def _content_bytes(self, content: Any, mime: str, where: str) -> bytes:
        which = content.WhichOneof("content")
        if which == "raw_bytes":
            if len(content.raw_bytes) > limits.MAX_RAW_BYTES:
                raise _ImportFailed(
                    f"{where}: content.raw_bytes is {len(content.raw_bytes)} bytes: at most "
                    f"{limits.MAX_RAW_BYTES:,}."
                )
            return bytes(content.raw_bytes)
        if which != "uri":
            raise _ImportFailed(f"{where}: content has neither uri nor raw_bytes.")
        data = self._linked(content.uri)
        if len(data) > limits.size_limit(mime):
            raise _ImportFailed(f"{where}: {content.uri}: {_too_big(len(data), mime)}")
        return data

    def _indexed(self, store_name: str, doc: Any) -> Any:
        doc.name = f"{store_name}/branches/0/documents/{doc.id}"
        doc.index_time.FromDatetime(self.cloud.clock.now())
        doc.index_status.index_time.FromDatetime(self.cloud.clock.now())
        return doc

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


def _mime(value: str) -> str:
    """A MIME type without its parameters (``text/plain; charset=utf-8`` → ``text/plain``)."""
    return value.split(";")[0].strip().lower()


def _too_big(size: int, mime: str, limit: int | None = None) -> str:
    limit = limits.size_limit(mime) if limit is None else limit
    kind = "text-based" if mime in limits.TEXT_TYPES else "other"
    return f"the file is {size:,} bytes: {kind} content may be at most {limit:,} bytes."


def _text(data: bytes, mime: str, where: str) -> str:
    """What search indexes: the text of text-based content (the emulator parses no PDF or
    Office files: they are indexed without text)."""
    if mime not in limits.TEXT_TYPES:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _ImportFailed(f"{where}: the content is not valid UTF-8 text.") from None


def _parse_document(text: str, where: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError:
        raise _ImportFailed(f"{where}: not a JSON object.") from None
    if not isinstance(data, dict):
        raise _ImportFailed(f"{where}: not a JSON object.")
    doc = de.Document.pb()()
    try:
        json_format.ParseDict(data, doc)
    except json_format.ParseError as err:
        raise _ImportFailed(f"{where}: not a Document: {err}") from None
    return doc
