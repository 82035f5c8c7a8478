"""A Cloud Storage bucket (``gs://BUCKET[/PREFIX]``) as the sink.

Transient failures (429, 5xx, dropped connections) are retried with the storage library's own
``DEFAULT_RETRY`` predicate, bounded to ``RETRY_TIMEOUT`` seconds. Digest uploads carry an
``if_generation_match`` precondition taken from the listing, so a retried upload can neither
duplicate nor clobber: when a retry finds that an earlier attempt already landed (412), the
stored object is compared with ours and accepted. Errors that no retry fixes — no bucket, no
permission, no credentials — become a :class:`SinkError` that says what to do.

``google.cloud.storage`` is imported on first use so that a directory sink never pays for it.
Where it sends its requests is decided by the job's options (``Options.storage_endpoint``,
from ``STORAGE_EMULATOR_HOST``), not read from the environment here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion.sinks.base import (
    DIGEST_CONTENT_TYPE,
    REPORT_CONTENT_TYPE,
    RESERVED,
    RUNS_DIR,
    Sink,
    SinkError,
    Stored,
    digest_key,
)

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.storage import Blob, Bucket, Client

RETRY_TIMEOUT = 120.0
# Digests over the library's 8 MiB single-request limit go up resumably in chunks this big
# (a multiple of 256 KiB), instead of the library's default 100 MiB chunk held in memory.
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
# Project id used against an emulator (fake-gcs-server), where none is needed.
EMULATOR_PROJECT = "govreposcrape-local"


def default_retry() -> Retry:
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry: Retry = DEFAULT_RETRY.with_timeout(RETRY_TIMEOUT)
    return retry


class GcsSink(Sink):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        client: Client | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.bucket_name = bucket
        # None: Cloud Storage itself; else an emulator's URL (anonymous credentials).
        self.endpoint = endpoint
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.url = f"gs://{bucket}/{self.prefix}".rstrip("/")
        self._client = client
        self._retry = retry if retry is not None else default_retry()
        # Object generations seen in the listing: the preconditions for overwriting them.
        self._generations: dict[str, int] = {}
        self._listed = False
        self.listed_objects = 0  # objects the last listing returned (reports are not among them)

    # -- the interface ---------------------------------------------------------------------

    def check(self) -> None:
        with self._errors("list objects in"):
            for _ in self.client.list_blobs(
                self.bucket_name,
                prefix=self.prefix or None,
                max_results=1,
                fields="items(name),nextPageToken",
                retry=self._retry,
            ):
                break
        from google.api_core.exceptions import NotFound

        # A unique name: retrying its upload or its deletion can harm nothing.
        probe = self.bucket.blob(f"{self.prefix}{RUNS_DIR}/.probe-{uuid.uuid4().hex}")
        with self._errors("write objects to"):
            probe.upload_from_string(b"", content_type="text/plain", retry=self._retry)
            with contextlib.suppress(NotFound):  # a retried delete finds it already gone
                probe.delete(retry=self._retry)

    def list_digests(self) -> dict[str, Stored]:
        found: dict[str, Stored] = {}
        generations: dict[str, int] = {}
        listed = 0
        # Two ranges around the names that start with "_" (the run reports, the feed snapshots
        # and the state, which grow every day): the listing never returns them.
        ranges = [
            {"end_offset": self.prefix + RESERVED},
            {"start_offset": self.prefix + chr(ord(RESERVED) + 1)},
        ]
        with self._errors("list objects in"):
            for bounds in ranges:
                blobs = self.client.list_blobs(
                    self.bucket_name,
                    prefix=self.prefix or None,
                    fields="items(name,metadata,generation,size),nextPageToken",
                    retry=self._retry,
                    **bounds,
                )
                for blob in blobs:
                    listed += 1
                    key = digest_key(blob.name[len(self.prefix) :])
                    if key is None:
                        continue
                    found[key] = Stored(dict(blob.metadata or {}), int(blob.size or 0))
                    if blob.generation is not None:
                        generations[key] = blob.generation
        self._generations = generations
        self._listed = True
        self.listed_objects = listed
        return found

    def hurry(self, seconds: float) -> None:
        self._retry = self._retry.with_timeout(seconds)

    def _put_digest(self, relative: str, source: Path, metadata: dict[str, str]) -> None:
        key = relative.removesuffix(".md")
        # Unknown before any listing; after one, an object it did not show must not exist yet.
        expected = self._generations.get(key, 0 if self._listed else None)
        with self._errors("write objects to"):
            generation = self._upload_digest(self.prefix + relative, source, metadata, expected)
        if generation is not None:
            self._generations[key] = generation

    def _put_metadata(self, relative: str, metadata: dict[str, str]) -> None:
        from google.api_core.exceptions import NotFound

        object_name = self.prefix + relative
        blob = self.bucket.blob(object_name)
        blob.metadata = metadata
        with self._errors("update object metadata in"):
            try:
                # Setting the same metadata twice is harmless, so the patch is always retried.
                blob.patch(retry=self._retry)
            except NotFound:
                raise SinkError(
                    f"cannot update the metadata of gs://{self.bucket_name}/{object_name}: "
                    "the object does not exist (deleted during the run?) — re-run the job"
                ) from None

    def _put_report(self, relative: str, body: bytes) -> None:
        blob = self.bucket.blob(self.prefix + relative)
        with self._errors("write objects to"):
            # The report of one task is written by that task only: overwriting is idempotent.
            blob.upload_from_string(body, content_type=REPORT_CONTENT_TYPE, retry=self._retry)

    def _read(self, relative: str) -> tuple[bytes | None, str]:
        from google.api_core.exceptions import NotFound

        blob = self.bucket.blob(self.prefix + relative)
        with self._errors("read objects in"):
            try:
                # The generation read with the bytes: the precondition of the next write.
                data = blob.download_as_bytes(retry=self._retry)
            except NotFound:
                return None, ""
        return data, str(blob.generation)

    def _write_if(self, relative: str, body: bytes, version: str, content_type: str) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        blob = self.bucket.blob(self.prefix + relative)
        with self._errors("write objects to"):
            try:
                # Conditional, hence safe to retry: a retry of a write that landed gets 412
                # and the caller reads again.
                blob.upload_from_string(
                    body,
                    content_type=content_type,
                    if_generation_match=int(version or 0),
                    retry=self._retry,
                )
            except PreconditionFailed:
                return False
        return True

    # -- plumbing --------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = _make_client(self.endpoint)
        return self._client

    @property
    def bucket(self) -> Bucket:
        return self.client.bucket(self.bucket_name)

    def _upload_digest(
        self, object_name: str, source: Path, metadata: dict[str, str], expected: int | None
    ) -> int | None:
        from google.api_core.exceptions import PreconditionFailed

        try:
            return self._upload_file(object_name, source, metadata, expected)
        except PreconditionFailed:
            pass
        # Either a retried attempt already stored this very object (its response was lost),
        # or someone replaced the object after our listing. Ours is the newest either way.
        current = self.bucket.get_blob(object_name, retry=self._retry)
        if current is not None and _same(current, source, metadata):
            return _generation(current)
        generation = current.generation if current is not None else 0
        return self._upload_file(object_name, source, metadata, generation)

    def _upload_file(
        self, object_name: str, source: Path, metadata: dict[str, str], expected: int | None
    ) -> int | None:
        blob = self.bucket.blob(object_name, chunk_size=UPLOAD_CHUNK_SIZE)
        blob.metadata = metadata  # sent with the upload: one request, not upload + patch
        blob.upload_from_filename(
            str(source),
            content_type=DIGEST_CONTENT_TYPE,
            if_generation_match=expected,
            retry=self._retry,
        )
        return _generation(blob)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from google.api_core import exceptions
        from google.auth import exceptions as auth_exceptions

        where = f"gs://{self.bucket_name}"
        try:
            yield
        except SinkError:
            raise
        except exceptions.NotFound:
            raise SinkError(
                f"bucket {where} does not exist — create it with "
                f"`gcloud storage buckets create {where}` or fix --sink"
            ) from None
        except (exceptions.Forbidden, exceptions.Unauthorized) as exc:
            raise SinkError(
                f"no permission to {action} {where} ({exc.message}) — grant the job's service "
                f"account roles/storage.objectAdmin on {where}"
            ) from None
        except auth_exceptions.GoogleAuthError as exc:
            raise SinkError(
                f"no usable Google credentials for {where} ({exc}) — run "
                "`gcloud auth application-default login`, or run the job as a service account"
            ) from None
        except exceptions.RetryError as exc:
            raise SinkError(
                f"{where} kept failing for {RETRY_TIMEOUT:.0f} s while trying to {action} it "
                f"({exc.cause}) — check Cloud Storage status and re-run the job"
            ) from None
        except exceptions.GoogleAPICallError as exc:
            raise SinkError(
                f"could not {action} {where}: {exc} — check the bucket and re-run"
            ) from None


def _generation(blob: Blob) -> int | None:
    return int(blob.generation) if blob.generation is not None else None


def _same(blob: Blob, source: Path, metadata: dict[str, str]) -> bool:
    with source.open("rb") as handle:
        md5 = base64.b64encode(hashlib.file_digest(handle, "md5").digest()).decode()
    return blob.md5_hash == md5 and (blob.metadata or {}) == metadata


def _make_client(endpoint: str | None) -> Client:
    from google.cloud import storage

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=EMULATOR_PROJECT,
            # google-auth leaves AnonymousCredentials.__init__ unannotated.
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint},
        )
    try:
        return storage.Client()
    except Exception as exc:  # google.auth raises several kinds here, all meaning "no credentials"
        raise SinkError(
            f"cannot create a Cloud Storage client ({exc}) — run "
            "`gcloud auth application-default login`, or run the job as a service account"
        ) from None
