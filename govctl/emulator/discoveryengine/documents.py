"""DocumentService: get and list documents, ImportDocuments from Cloud Storage (checked here,
run by :mod:`.importer`), DeleteDocument and PurgeDocuments (:mod:`.purge`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.cloud import discoveryengine_v1 as de

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.discoveryengine import limits
from govctl.emulator.discoveryengine.importer import Importer, ImportJob, Mode
from govctl.emulator.discoveryengine.purge import Purger
from govctl.emulator.discoveryengine.resources import DOC_RE
from govctl.emulator.rpc import invalid_argument, not_found
from govctl.emulator.store import copy


class DocumentsRpcs(Importer, Purger):
    def documents_rpcs(self) -> Bound:
        return gapic_api("google.cloud.discoveryengine_v1.services.document_service").bind(
            {
                "GetDocument": self.get_document,
                "ListDocuments": self.list_documents,
                "ImportDocuments": self.import_documents,
                "DeleteDocument": self.delete_document,
                "PurgeDocuments": self.purge_documents,
            }
        )

    def get_document(self, request: de.GetDocumentRequest, context: Any) -> Any:
        m = DOC_RE.fullmatch(request.name)
        if not m:
            raise invalid_argument(f"Invalid document name {request.name!r}.")
        with self.lock:
            store = self._branch(request.name.rsplit("/documents/", 1)[0])
            doc = self._docs[store].get(m.group(6))
            if doc is None:
                raise not_found(f"Document {request.name} not found.")
            return de.Document.wrap(copy(doc))

    def list_documents(self, request: de.ListDocumentsRequest, context: Any) -> Any:
        with self.lock:
            store = self._branch(request.parent)
            # Page the ids, then copy only the page: a data store may hold ~20,000 documents.
            ids, token = rpc.page(sorted(self._docs[store]), request.page_size, request.page_token)
            items = [de.Document.wrap(copy(self._docs[store][i])) for i in ids]
        return de.ListDocumentsResponse(documents=items, next_page_token=token)

    def import_documents(self, request: de.ImportDocumentsRequest, context: Any) -> Any:
        pb = de.ImportDocumentsRequest.pb(request)
        with self.lock:
            store_name = self._branch(request.parent)
            store = self._stores.require(store_name)
        if pb.WhichOneof("source") != "gcs_source":
            raise invalid_argument("The emulator imports only from gcs_source.")
        source = request.gcs_source
        schema = source.data_schema or "document"
        if schema not in ("content", "document"):
            raise invalid_argument(
                f"The emulator imports data_schema 'document' (JSON lines of Documents) or "
                f"'content' (unstructured files), not {schema!r}."
            )
        if store.content_config != de.DataStore.ContentConfig.CONTENT_REQUIRED:
            raise invalid_argument(
                f"Data store {store_name} has no content (content_config "
                f"{de.DataStore.ContentConfig(store.content_config).name}): unstructured "
                "documents need CONTENT_REQUIRED."
            )
        job = ImportJob(
            store=store_name,
            schema=schema,
            patterns=_patterns(source.input_uris),
            mode=request.reconciliation_mode or Mode.INCREMENTAL,
        )
        now = self.cloud.clock.now()
        meta = de.ImportDocumentsMetadata(create_time=now, update_time=now)
        op = self.operations.new(
            self._op_name(f"{store_name}/branches/0", "import-documents"), meta
        )
        self.operations.work(self._import, op.name, job, name=f"import-{op.name[-8:]}")
        return op


def _patterns(uris: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(bucket, object pattern) of each input URI; INVALID_ARGUMENT for a bad one."""
    if not uris:
        raise invalid_argument("gcs_source.input_uris is required.")
    patterns = []
    for uri in uris:
        bucket, _, obj = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or not bucket or not obj or len(uri) > 2000:
            raise invalid_argument(
                f"Invalid input URI {uri!r}: expected gs://BUCKET/OBJECT or a pattern "
                "such as gs://BUCKET/dir/*.jsonl (at most 2000 characters)."
            )
        problem = limits.wildcard_problem(obj)
        if problem:
            raise invalid_argument(f"Invalid input URI {uri!r}: {problem}.")
        patterns.append((bucket, obj))
    return tuple(patterns)
