"""Discovery Engine v1 (``google.cloud.discoveryengine.v1``) for the loopback cloud.

DataStoreService (:mod:`.data_stores`), DocumentService (:mod:`.documents`, with ImportDocuments
from Cloud Storage run by :mod:`.importer`), SearchService.Search (:mod:`.search`, plain keyword
search with :mod:`.text`) and ``google.longrunning.Operations`` (:mod:`.operations`: its own
operation names, every other name handed on to Cloud Build's handler, which hands Run's on in
turn), all on the stores of :mod:`.resources`. This module wires the handlers and keeps the
lifecycle and the state file. See docs/emulator/discoveryengine.md.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.cloud import discoveryengine_v1 as de
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from govctl.emulator.discoveryengine.data_stores import DataStoresRpcs
from govctl.emulator.discoveryengine.documents import DocumentsRpcs
from govctl.emulator.discoveryengine.search import SearchRpcs
from govctl.emulator.state import from_jsonable, to_jsonable


class DiscoveryEngineService(DataStoresRpcs, DocumentsRpcs, SearchRpcs):
    key = "discoveryengine"

    # gRPC, lifecycle, persistence -------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            self.data_stores_handler(),
            self.documents_handler(),
            self.search_handler(),
            self.operations.handler(),
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
