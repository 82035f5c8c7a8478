"""Discovery Engine v1 (``google.cloud.discoveryengine.v1``) for the loopback cloud.

DataStoreService (data stores), DocumentService (documents, ImportDocuments from Cloud Storage)
and SearchService.Search (plain keyword search, :mod:`.text`). ImportDocuments reads the objects
from fake-gcs-server (``cloud.storage_url``) on a thread and answers a pending operation that
ends with an ``ImportDocumentsResponse``; its metadata carries the success and failure counts as
it goes. This service answers ``google.longrunning.Operations`` for its own operation names
(they contain ``/collections/``) and hands every other name on to Cloud Build's handler, which
hands Run's on in turn: one gRPC server carries every API, so the first registered handler of a
service name answers it. See docs/emulator/discoveryengine.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

import grpc
from google.cloud import discoveryengine_v1 as de
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, struct_pb2
from google.rpc import code_pb2, status_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.discoveryengine import text
from govctl.emulator.rpc import Method, already_exists, invalid_argument, not_found
from govctl.emulator.state import from_jsonable, to_jsonable

Mode = de.ImportDocumentsRequest.ReconciliationMode
_COLLECTION_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/collections/([^/]+)")
_STORE_RE = re.compile(_COLLECTION_RE.pattern + r"/dataStores/([^/]+)")
_BRANCH_RE = re.compile(_STORE_RE.pattern + r"/branches/([^/]+)")
_DOC_RE = re.compile(_BRANCH_RE.pattern + r"/documents/([^/]+)")
_SERVING_RE = re.compile(_STORE_RE.pattern + r"/servingConfigs/([^/]+)")
_STORE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
LOCATIONS = ("global", "us", "eu")
# GcsSource: "at most 100,000 files if data_schema is content", each up to 100 MB.
MAX_FILES = 100_000
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_ERROR_SAMPLES = 10
SEARCH_DEFAULT_SIZE, SEARCH_MAX_SIZE = 50, 100
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


def _location(project: str, location: str) -> None:
    if location not in LOCATIONS:
        raise invalid_argument(
            f"Location {location!r} is not supported: expected one of {', '.join(LOCATIONS)}."
        )


class _ImportFailed(Exception):
    pass


class DiscoveryEngineService(Service):
    key = "discoveryengine"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._stores: dict[str, Any] = {}  # data store name -> raw DataStore pb
        self._docs: dict[str, dict[str, Any]] = {}  # data store name -> id -> raw Document pb
        self._texts: dict[str, dict[str, str]] = {}  # data store name -> id -> indexed text
        self._ops: dict[str, operations_pb2.Operation] = {}
        self._cond = threading.Condition(self.lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # names ------------------------------------------------------------------------------------
    def _store(self, name: str) -> Any:
        m = _STORE_RE.fullmatch(name)
        if not m:
            raise invalid_argument(
                f"Invalid data store name {name!r}: expected "
                '"projects/P/locations/L/collections/C/dataStores/D".'
            )
        store = self._stores.get(name)
        if store is None:
            raise not_found(f"DataStore {name} not found.")
        return store

    def _branch(self, name: str) -> str:
        """The data store of a branch name; ``default_branch`` and ``0`` are the one branch."""
        m = _BRANCH_RE.fullmatch(name)
        if not m:
            raise invalid_argument(
                f"Invalid branch name {name!r}: expected "
                '"projects/P/locations/L/collections/C/dataStores/D/branches/B".'
            )
        if m.group(5) not in ("0", "default_branch"):
            raise not_found(f"Branch {name} not found: a data store has one branch, 0.")
        store = name.rsplit("/branches/", 1)[0]
        self._store(store)
        return store

    def _op_id(self, kind: str) -> str:
        return f"{kind}-{random.randrange(10**18, 10**19)}"

    # DataStoreService -------------------------------------------------------------------------
    def create_data_store(self, request: de.CreateDataStoreRequest, context: Any) -> Any:
        m = _COLLECTION_RE.fullmatch(request.parent)
        if not m:
            raise invalid_argument(
                f"Invalid parent {request.parent!r}: expected "
                '"projects/P/locations/L/collections/default_collection".'
            )
        _location(m.group(1), m.group(2))
        if m.group(3) != "default_collection":
            raise invalid_argument("The emulator has only the default_collection.")
        if not _STORE_ID_RE.fullmatch(request.data_store_id):
            raise invalid_argument(
                f"Invalid data_store_id {request.data_store_id!r}: lowercase letters, digits, "
                "'-' and '_', starting with a letter or digit, at most 63 characters."
            )
        store = de.DataStore.pb(request.data_store)
        if not store.display_name:
            raise invalid_argument("data_store.display_name is required.")
        name = f"{request.parent}/dataStores/{request.data_store_id}"
        out = de.DataStore.pb()()
        out.CopyFrom(store)
        out.name = name
        if not out.industry_vertical:
            out.industry_vertical = de.IndustryVertical.GENERIC
        if not out.solution_types:
            out.solution_types.append(de.SolutionType.SOLUTION_TYPE_SEARCH)
        if not out.content_config:
            out.content_config = de.DataStore.ContentConfig.NO_CONTENT
        out.create_time.FromDatetime(self.cloud.clock.now())
        out.default_schema_id = "default_schema"
        with self._cond:
            if name in self._stores:
                raise already_exists(f"DataStore {name} already exists.")
            self._stores[name] = out
            self._docs[name], self._texts[name] = {}, {}
            meta = de.CreateDataStoreMetadata(
                create_time=self.cloud.clock.now(), update_time=self.cloud.clock.now()
            )
            op = rpc.operation(
                f"{request.parent}/operations/{self._op_id('create-data-store')}",
                meta,
                de.DataStore.wrap(_copy(out)),
            )
            self._ops[op.name] = op
            self.changed()
            return _copy(op)

    def get_data_store(self, request: de.GetDataStoreRequest, context: Any) -> Any:
        with self.lock:
            return de.DataStore.wrap(_copy(self._store(request.name)))

    def list_data_stores(self, request: de.ListDataStoresRequest, context: Any) -> Any:
        m = _COLLECTION_RE.fullmatch(request.parent)
        if not m:
            raise invalid_argument(f"Invalid parent {request.parent!r}.")
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListDataStores.")
        with self.lock:
            stores = [
                de.DataStore.wrap(_copy(s))
                for n, s in sorted(self._stores.items())
                if n.startswith(request.parent + "/dataStores/")
            ]
        items, token = rpc.page(stores, request.page_size, request.page_token, default_size=10)
        return de.ListDataStoresResponse(data_stores=items, next_page_token=token)

    def delete_data_store(self, request: de.DeleteDataStoreRequest, context: Any) -> Any:
        with self._cond:
            self._store(request.name)
            del self._stores[request.name]
            self._docs.pop(request.name, None)
            self._texts.pop(request.name, None)
            collection = request.name.rsplit("/dataStores/", 1)[0]
            meta = de.DeleteDataStoreMetadata(
                create_time=self.cloud.clock.now(), update_time=self.cloud.clock.now()
            )
            op = rpc.operation(
                f"{collection}/operations/{self._op_id('delete-data-store')}",
                meta,
                empty_pb2.Empty(),
            )
            self._ops[op.name] = op
            self.changed()
            return _copy(op)

    # DocumentService --------------------------------------------------------------------------
    def get_document(self, request: de.GetDocumentRequest, context: Any) -> Any:
        m = _DOC_RE.fullmatch(request.name)
        if not m:
            raise invalid_argument(f"Invalid document name {request.name!r}.")
        with self.lock:
            store = self._branch(request.name.rsplit("/documents/", 1)[0])
            doc = self._docs[store].get(m.group(6))
            if doc is None:
                raise not_found(f"Document {request.name} not found.")
            return de.Document.wrap(_copy(doc))

    def list_documents(self, request: de.ListDocumentsRequest, context: Any) -> Any:
        with self.lock:
            store = self._branch(request.parent)
            # Page the ids, then copy only the page: a data store may hold ~20,000 documents.
            ids, token = rpc.page(sorted(self._docs[store]), request.page_size, request.page_token)
            items = [de.Document.wrap(_copy(self._docs[store][i])) for i in ids]
        return de.ListDocumentsResponse(documents=items, next_page_token=token)

    def import_documents(self, request: de.ImportDocumentsRequest, context: Any) -> Any:
        pb = de.ImportDocumentsRequest.pb(request)
        with self.lock:
            store_name = self._branch(request.parent)
            store = self._stores[store_name]
        if pb.WhichOneof("source") != "gcs_source":
            raise invalid_argument("The emulator imports only from gcs_source.")
        source = request.gcs_source
        if source.data_schema != "content":
            raise invalid_argument(
                f"The emulator imports only data_schema 'content' (unstructured documents), "
                f"not {source.data_schema or 'document'!r}."
            )
        if store.content_config != de.DataStore.ContentConfig.CONTENT_REQUIRED:
            raise invalid_argument(
                f"Data store {store_name} has no content (content_config "
                f"{de.DataStore.ContentConfig(store.content_config).name}): unstructured "
                "documents need CONTENT_REQUIRED."
            )
        if not source.input_uris:
            raise invalid_argument("gcs_source.input_uris is required.")
        patterns = []
        for uri in source.input_uris:
            bucket, _, obj = uri.removeprefix("gs://").partition("/")
            if not uri.startswith("gs://") or not bucket or not obj or len(uri) > 2000:
                raise invalid_argument(
                    f"Invalid input URI {uri!r}: expected gs://BUCKET/OBJECT or a pattern "
                    "such as gs://BUCKET/dir/*.md."
                )
            patterns.append((bucket, obj))
        mode = request.reconciliation_mode or Mode.INCREMENTAL
        now = self.cloud.clock.now()
        meta = de.ImportDocumentsMetadata(create_time=now, update_time=now)
        with self._cond:
            op = rpc.operation(
                f"{store_name}/branches/0/operations/{self._op_id('import-documents')}", meta
            )
            self._ops[op.name] = op
            self.changed()
            out = _copy(op)
        thread = threading.Thread(
            target=self._import,
            args=(op.name, store_name, patterns, mode),
            name=f"import-{op.name[-8:]}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()
        return out

    # the import itself ------------------------------------------------------------------------
    def _import(
        self, op_name: str, store_name: str, patterns: list[tuple[str, str]], mode: int
    ) -> None:
        meta = de.ImportDocumentsMetadata.pb()()
        meta.CopyFrom(de.ImportDocumentsMetadata.pb(self._meta(op_name)))
        samples: list[status_pb2.Status] = []
        seen: set[str] = set()
        if self._stopping.wait(START_SECONDS):
            return
        try:
            objects = [o for bucket, pattern in patterns for o in self._match(bucket, pattern)]
            if len(objects) > MAX_FILES:
                raise _ImportFailed(
                    f"{len(objects)} files match: at most {MAX_FILES} can be imported at a time."
                )
            meta.total_count = len(objects)
            self._update(op_name, meta)
            said = time.monotonic()
            for bucket, obj in objects:
                if self._stopping.is_set():
                    return
                uri = f"gs://{bucket}/{obj['name']}"
                try:
                    doc, body = self._document(store_name, bucket, obj, uri)
                except _ImportFailed as err:
                    meta.failure_count += 1
                    if len(samples) < MAX_ERROR_SAMPLES:
                        samples.append(
                            status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(err))
                        )
                else:
                    with self._cond:
                        if store_name not in self._stores:
                            raise _ImportFailed(f"Data store {store_name} was deleted.")
                        self._docs[store_name][doc.id] = doc
                        self._texts[store_name][doc.id] = body
                    seen.add(doc.id)
                    meta.success_count += 1
                if time.monotonic() - said >= PROGRESS_SECONDS:
                    said = time.monotonic()
                    meta.update_time.FromDatetime(self.cloud.clock.now())
                    self._update(op_name, meta)
            if mode == Mode.FULL:
                with self._cond:
                    for gone in set(self._docs.get(store_name, {})) - seen:
                        del self._docs[store_name][gone]
                        self._texts[store_name].pop(gone, None)
        except _ImportFailed as err:
            self._end(op_name, meta, error=(code_pb2.INVALID_ARGUMENT, str(err)))
            return
        except Exception as err:  # a bug must not leave the operation running for ever
            self._end(op_name, meta, error=(code_pb2.INTERNAL, f"emulator error: {err!r}"))
            raise
        response = de.ImportDocumentsResponse.pb()(error_samples=samples)
        self._end(op_name, meta, response=response)

    def _meta(self, op_name: str) -> de.ImportDocumentsMetadata:
        with self.lock:
            op = self._ops[op_name]
            return de.ImportDocumentsMetadata.deserialize(op.metadata.value)

    def _update(self, op_name: str, meta: Any) -> None:
        with self._cond:
            op = self._ops.get(op_name)
            if op is not None and not op.done:
                op.metadata.CopyFrom(rpc.pack(meta))
                self.changed()

    def _end(
        self,
        op_name: str,
        meta: Any,
        *,
        response: Any | None = None,
        error: tuple[int, str] | None = None,
    ) -> None:
        with self._cond:
            op = self._ops.get(op_name)
            if op is None or op.done:
                return
            meta.update_time.FromDatetime(self.cloud.clock.now())
            op.metadata.CopyFrom(rpc.pack(meta))
            if error is not None:
                op.error.CopyFrom(status_pb2.Status(code=error[0], message=error[1]))
            else:
                op.response.CopyFrom(rpc.pack(response))
            op.done = True
            self.changed()
            self._cond.notify_all()

    def _storage(self, path: str) -> bytes:
        base = self.cloud.storage_url
        if not base:
            raise _ImportFailed("the emulator runs without Cloud Storage")
        with urllib.request.urlopen(base + path, timeout=30) as resp:
            return bytes(resp.read())

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
            data = self._storage(
                f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(obj['name'], safe='')}?alt=media"
            )
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

    # SearchService ----------------------------------------------------------------------------
    def search(self, request: de.SearchRequest, context: Any) -> Any:
        m = _SERVING_RE.fullmatch(request.serving_config)
        if not m:
            raise invalid_argument(
                f"Invalid serving_config {request.serving_config!r}: the emulator serves "
                '"projects/P/locations/L/collections/C/dataStores/D/servingConfigs/S".'
            )
        if request.page_size < 0 or request.offset < 0:
            raise invalid_argument("page_size and offset must not be negative.")
        if request.filter:
            raise invalid_argument("The emulator does not support a search filter.")
        store_name = request.serving_config.rsplit("/servingConfigs/", 1)[0]
        terms = text.words(request.query)
        size = min(request.page_size or SEARCH_DEFAULT_SIZE, SEARCH_MAX_SIZE)
        with self.lock:
            self._store(store_name)
            scored = []
            for doc_id, body in self._texts[store_name].items():
                points = text.score(body, terms) if terms else 1
                if points:
                    scored.append((-points, doc_id, body))
            scored.sort()
            docs = dict(self._docs[store_name])
        start = request.offset
        if request.page_token:
            try:
                start = int(request.page_token)
            except ValueError:
                raise invalid_argument(f"Invalid page_token {request.page_token!r}.") from None
        results = []
        spec = request.content_search_spec.snippet_spec
        for _, doc_id, body in scored[start : start + size]:
            doc = de.Document.pb()()
            doc.name, doc.id = docs[doc_id].name, doc_id
            derived: dict[str, Any] = {
                "link": docs[doc_id].content.uri,
                "title": docs[doc_id].content.uri.split("/", 3)[-1].removesuffix(".md"),
            }
            if spec.return_snippet:
                derived["snippets"] = [
                    {"snippet": text.snippet(body, terms), "snippet_status": "SUCCESS"}
                ]
            st = struct_pb2.Struct()
            st.update(derived)
            doc.derived_struct_data.CopyFrom(st)
            results.append(
                de.SearchResponse.SearchResult(id=doc_id, document=de.Document.wrap(doc))
            )
        end = start + size
        return de.SearchResponse(
            results=results,
            total_size=len(scored),
            attribution_token=f"emulator-{random.randrange(10**12)}",
            next_page_token=str(end) if end < len(scored) else "",
        )

    # google.longrunning.Operations, in front of Cloud Build's (and Run's) ---------------------
    @staticmethod
    def _ours(name: str) -> bool:
        return "/collections/" in name

    def _delegate(self, method: str, request: Any, context: Any) -> Any:
        return getattr(self.cloud.service("cloudbuild"), method)(request, context)

    def _op(self, name: str) -> operations_pb2.Operation:
        op = self._ops.get(name)
        if op is None:
            raise not_found(f"Operation {name} not found.")
        return op

    def get_operation(self, request: operations_pb2.GetOperationRequest, context: Any) -> Any:
        if not self._ours(request.name):
            return self._delegate("get_operation", request, context)
        with self.lock:
            return _copy(self._op(request.name))

    def wait_operation(self, request: operations_pb2.WaitOperationRequest, context: Any) -> Any:
        if not self._ours(request.name):
            return self._delegate("wait_operation", request, context)
        get = lambda: self._op(request.name)  # noqa: E731
        return _copy(rpc.wait_operation(request, context, self._cond, get, self._stopping))

    def list_operations(self, request: operations_pb2.ListOperationsRequest, context: Any) -> Any:
        if not self._ours(request.name):
            return self._delegate("list_operations", request, context)
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListOperations.")
        with self.lock:
            ops = [
                _copy(op)
                for name, op in self._ops.items()
                if name.startswith(request.name.rstrip("/") + "/")
            ]
        chunk, token = rpc.page(ops, request.page_size, request.page_token)
        return operations_pb2.ListOperationsResponse(operations=chunk, next_page_token=token)

    def delete_operation(self, request: operations_pb2.DeleteOperationRequest, context: Any) -> Any:
        if not self._ours(request.name):
            return self._delegate("delete_operation", request, context)
        with self.lock:
            self._op(request.name)
            del self._ops[request.name]
            self.changed()
        return empty_pb2.Empty()

    # gRPC, lifecycle, persistence -------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        o = operations_pb2
        return [
            rpc.service(
                "google.cloud.discoveryengine.v1.DataStoreService",
                {
                    "CreateDataStore": Method(
                        self.create_data_store, de.CreateDataStoreRequest, o.Operation
                    ),
                    "GetDataStore": Method(
                        self.get_data_store, de.GetDataStoreRequest, de.DataStore
                    ),
                    "ListDataStores": Method(
                        self.list_data_stores, de.ListDataStoresRequest, de.ListDataStoresResponse
                    ),
                    "DeleteDataStore": Method(
                        self.delete_data_store, de.DeleteDataStoreRequest, o.Operation
                    ),
                },
            ),
            rpc.service(
                "google.cloud.discoveryengine.v1.DocumentService",
                {
                    "GetDocument": Method(self.get_document, de.GetDocumentRequest, de.Document),
                    "ListDocuments": Method(
                        self.list_documents, de.ListDocumentsRequest, de.ListDocumentsResponse
                    ),
                    "ImportDocuments": Method(
                        self.import_documents, de.ImportDocumentsRequest, o.Operation
                    ),
                },
            ),
            rpc.service(
                "google.cloud.discoveryengine.v1.SearchService",
                {"Search": Method(self.search, de.SearchRequest, de.SearchResponse)},
            ),
            rpc.operations_service(self),
        ]

    def start(self) -> None:
        # An import cut short by a stop is not resumed: it fails, and a new sync imports again.
        for name, op in list(self._ops.items()):
            if not op.done and "/operations/import-documents-" in name:
                self._end(
                    name,
                    de.ImportDocumentsMetadata.pb(self._meta(name)),
                    error=(code_pb2.ABORTED, "the emulator stopped during the import"),
                )

    def stopping(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def dump(self) -> Any:
        return {
            "data_stores": [to_jsonable(s) for s in self._stores.values()],
            "documents": [
                {**to_jsonable(d), "_text": self._texts[store][doc_id]}
                for store, docs in self._docs.items()
                for doc_id, d in docs.items()
            ],
            "operations": [to_jsonable(op) for op in self._ops.values()],
        }

    def load(self, data: Any) -> None:
        data = data or {}
        for rec in data.get("data_stores", []):
            store = de.DataStore.pb(from_jsonable(de.DataStore, rec))
            self._stores[store.name] = store
            self._docs[store.name], self._texts[store.name] = {}, {}
        for rec in data.get("documents", []):
            body = rec.pop("_text", "")
            doc = de.Document.pb(from_jsonable(de.Document, rec))
            store = doc.name.rsplit("/branches/", 1)[0]
            if store in self._stores:
                self._docs[store][doc.id] = doc
                self._texts[store][doc.id] = body
        for rec in data.get("operations", []):
            op = from_jsonable(operations_pb2.Operation, rec)
            self._ops[op.name] = op


def _copy(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out
