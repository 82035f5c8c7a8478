"""SearchService.Search: plain keyword search over a data store's documents (:mod:`.text`)."""

from __future__ import annotations

import random
from typing import Any

from google.cloud import discoveryengine_v1 as de
from google.protobuf import struct_pb2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.discoveryengine import text
from govctl.emulator.discoveryengine.resources import SERVING_RE, DiscoveryEngineResources
from govctl.emulator.rpc import invalid_argument, matched

SEARCH_DEFAULT_SIZE, SEARCH_MAX_SIZE = 50, 100


class SearchRpcs(DiscoveryEngineResources):
    def search_rpcs(self) -> Bound:
        api = gapic_api("google.cloud.discoveryengine_v1.services.search_service")
        return api.bind({"Search": self.search})

    def search(self, request: de.SearchRequest, context: Any) -> Any:
        form = "projects/P/locations/L/collections/C/dataStores/D/servingConfigs/S"
        matched(
            SERVING_RE,
            request.serving_config,
            f'Invalid serving_config {request.serving_config!r}: the emulator serves "{form}".',
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
            stored = docs[doc_id]
            doc = de.Document.pb()()
            doc.name, doc.id = stored.name, doc_id
            if stored.HasField("struct_data"):
                doc.struct_data.CopyFrom(stored.struct_data)
            derived: dict[str, Any] = {"link": stored.content.uri, "title": _title(stored)}
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


def _title(doc: Any) -> str:
    """The result's title: the metadata's ``title``, else the object name without its
    extension (as the console shows a file's name)."""
    given = doc.struct_data.fields.get("title")
    if given is not None and given.string_value:
        return str(given.string_value)
    return str(doc.content.uri.split("/", 3)[-1].rpartition(".")[0] or doc.id)
