"""DeleteDocument and PurgeDocuments: documents leave a data store.

PurgeDocumentsRequest (googleapis ``google/cloud/discoveryengine/v1/purge_config.proto``):
``filter`` is required and "Only currently supported value is ``*``"; an ``inline_source``
names the documents (full resource names, "Recommended max of 100 items"); without a source
every document goes; with ``force`` false nothing is deleted and the response says how many
would be (``purge_count``) with up to 100 names (``purge_sample``). The metadata counts
``success_count``, ``failure_count`` and ``ignored_count`` ("entries were not found").
"""

from __future__ import annotations

from typing import Any

from google.cloud import discoveryengine_v1 as de
from google.protobuf import empty_pb2

from govctl.emulator.discoveryengine.resources import DOC_RE, DiscoveryEngineResources
from govctl.emulator.rpc import invalid_argument, not_found

MAX_PURGE_SAMPLE = 100


class Purger(DiscoveryEngineResources):
    def delete_document(self, request: de.DeleteDocumentRequest, context: Any) -> Any:
        m = DOC_RE.fullmatch(request.name)
        if not m:
            raise invalid_argument(f"Invalid document name {request.name!r}.")
        with self._cond:
            store = self._branch(request.name.rsplit("/documents/", 1)[0])
            if self._docs[store].pop(m.group(6), None) is None:
                raise not_found(f"Document {request.name} not found.")
            self._texts[store].pop(m.group(6), None)
            self.changed()
        return empty_pb2.Empty()

    def purge_documents(self, request: de.PurgeDocumentsRequest, context: Any) -> Any:
        pb = de.PurgeDocumentsRequest.pb(request)
        if request.filter != "*":
            raise invalid_argument(
                f"Invalid filter {request.filter!r}: the only supported value is '*'."
            )
        source = pb.WhichOneof("source")
        if source == "gcs_source":
            raise invalid_argument("The emulator purges by inline_source or by filter only.")
        now = self.cloud.clock.now()
        meta = de.PurgeDocumentsMetadata.pb()()
        meta.create_time.FromDatetime(now)
        meta.update_time.FromDatetime(now)
        with self._cond:
            store = self._branch(request.parent)
            branch = request.parent.rsplit("/branches/", 1)[0] + "/branches/0"
            if source == "inline_source":
                ids = self._named(store, branch, request.inline_source.documents, meta)
            else:
                ids = sorted(self._docs[store])
            response = de.PurgeDocumentsResponse.pb()(purge_count=len(ids))
            if request.force:
                for doc_id in ids:
                    del self._docs[store][doc_id]
                    self._texts[store].pop(doc_id, None)
                meta.success_count = len(ids)
            else:
                response.purge_sample.extend(
                    f"{branch}/documents/{i}" for i in ids[:MAX_PURGE_SAMPLE]
                )
            op_name = self._op_name(branch, "purge-documents")
            self.changed()
            return self.operations.new(op_name, meta, response)

    def _named(self, store: str, branch: str, names: Any, meta: Any) -> list[str]:
        """The ids of the named documents that exist; a name of another branch is a failure,
        a missing document is ignored (both counted in ``meta``)."""
        ids: list[str] = []
        for name in names:
            m = DOC_RE.fullmatch(name)
            parent = name.rsplit("/documents/", 1)[0]
            if not m or parent.replace("/branches/default_branch", "/branches/0") != branch:
                meta.failure_count += 1
            elif m.group(6) in self._docs[store]:
                ids.append(m.group(6))
            else:
                meta.ignored_count += 1
        return sorted(set(ids))
