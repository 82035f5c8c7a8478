"""Discovery Engine v1 (``google.cloud.discoveryengine.v1``) for the loopback cloud.

DataStoreService (:mod:`.data_stores`), DocumentService (:mod:`.documents`, with ImportDocuments
from Cloud Storage run by :mod:`.importer`), SearchService.Search (:mod:`.search`, plain keyword
search with :mod:`.text`) and ``google.longrunning.Operations`` (:mod:`.operations`: its own
operation names, every other name handed on to Cloud Build's handler, which hands Run's on in
turn), all on the stores of :mod:`.resources`. This module wires the handlers and keeps the
lifecycle and the state file. See docs/emulator/discoveryengine.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from google.cloud import discoveryengine_v1 as de
from google.rpc import code_pb2

from govctl.emulator.apis import Bound
from govctl.emulator.discoveryengine.data_stores import DataStoresRpcs
from govctl.emulator.discoveryengine.documents import DocumentsRpcs
from govctl.emulator.discoveryengine.resources import (
    authority,
    endpoint_problem,
    request_location,
)
from govctl.emulator.discoveryengine.search import SearchRpcs
from govctl.emulator.rpc import invalid_argument
from govctl.emulator.state import from_jsonable, to_jsonable


class DiscoveryEngineService(DataStoresRpcs, DocumentsRpcs, SearchRpcs):
    key = "discoveryengine"

    # gRPC, lifecycle, persistence -------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        tables = [self.data_stores_rpcs(), self.documents_rpcs(), self.search_rpcs()]
        return [
            dataclasses.replace(t, handlers={k: _regional(h) for k, h in t.handlers.items()})
            for t in tables
        ]

    def start(self) -> None:
        # An import cut short by a stop is not resumed: it fails, and a new sync imports again.
        for name in self.operations.pending():
            if "/operations/import-documents-" in name:
                self._end(
                    name,
                    de.ImportDocumentsMetadata.pb(self._meta(name)),
                    error=(code_pb2.ABORTED, "the emulator stopped during the import"),
                )

    def stopping(self) -> None:
        self.operations.wake()

    def stop(self) -> None:
        self.operations.join(timeout=2)

    def dump(self) -> Any:
        return {
            "data_stores": self._stores.dump(),
            "documents": [
                {**to_jsonable(d), "_text": self._texts[store][doc_id]}
                for store, docs in self._docs.items()
                for doc_id, d in docs.items()
            ],
            "operations": self.operations.dump(),
        }

    def load(self, data: Any) -> None:
        data = data or {}
        self._stores.load(data.get("data_stores", []))
        for store in self._stores:
            self._docs[store.name], self._texts[store.name] = {}, {}
        for rec in data.get("documents", []):
            body = rec.pop("_text", "")
            doc = de.Document.pb(from_jsonable(de.Document, rec))
            store = doc.name.rsplit("/branches/", 1)[0]
            if store in self._stores:
                self._docs[store][doc.id] = doc
                self._texts[store][doc.id] = body
        self.operations.load(data.get("operations", []))


def _regional(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``handler``, refusing a request whose location the dialled endpoint does not serve."""

    def checked(request: Any, context: Any) -> Any:
        location = request_location(request)
        problem = location and endpoint_problem(authority(context), location)
        if problem:
            raise invalid_argument(problem)
        return handler(request, context)

    return checked
