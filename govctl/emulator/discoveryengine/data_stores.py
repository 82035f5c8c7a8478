"""DataStoreService: create, get, list and delete data stores (one collection, three locations)."""

from __future__ import annotations

import re
from typing import Any

from google.cloud import discoveryengine_v1 as de
from google.protobuf import empty_pb2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.discoveryengine.resources import (
    COLLECTION_RE,
    DiscoveryEngineResources,
    parse,
)
from govctl.emulator.rpc import Paging, invalid_argument, refuse_filter

_STORE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
LOCATIONS = ("global", "us", "eu")
# ListDataStoresRequest.page_size: "If unspecified, defaults to 10. The maximum allowed value
# is 50. Values above 50 will be coerced to 50."
_PAGING = Paging(default=10, maximum=50)


def _location(project: str, location: str) -> None:
    if location not in LOCATIONS:
        raise invalid_argument(
            f"Location {location!r} is not supported: expected one of {', '.join(LOCATIONS)}."
        )


class DataStoresRpcs(DiscoveryEngineResources):
    def data_stores_rpcs(self) -> Bound:
        return gapic_api("google.cloud.discoveryengine_v1.services.data_store_service").bind(
            {
                "CreateDataStore": self.create_data_store,
                "GetDataStore": self.get_data_store,
                "ListDataStores": self.list_data_stores,
                "DeleteDataStore": self.delete_data_store,
            }
        )

    def create_data_store(self, request: de.CreateDataStoreRequest, context: Any) -> Any:
        form = "projects/P/locations/L/collections/default_collection"
        m = parse(COLLECTION_RE, request.parent, "parent", form)
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
        out = self._stores.stored(store)
        out.name = name
        if not out.industry_vertical:
            out.industry_vertical = de.IndustryVertical.GENERIC
        if not out.solution_types:
            out.solution_types.append(de.SolutionType.SOLUTION_TYPE_SEARCH)
        if not out.content_config:
            out.content_config = de.DataStore.ContentConfig.NO_CONTENT
        now = self.cloud.clock.now()
        out.create_time.FromDatetime(now)
        out.default_schema_id = "default_schema"
        with self._cond:
            self._stores.add(out)
            self._docs[name], self._texts[name] = {}, {}
            meta = de.CreateDataStoreMetadata(create_time=now, update_time=now)
            op_name = self._op_name(request.parent, "create-data-store")
            self.changed()
            return self.operations.new(op_name, meta, self._stores.out(out))

    def get_data_store(self, request: de.GetDataStoreRequest, context: Any) -> Any:
        with self.lock:
            return self._stores.out(self._store(request.name))

    def list_data_stores(self, request: de.ListDataStoresRequest, context: Any) -> Any:
        parse(COLLECTION_RE, request.parent, "parent", "projects/P/locations/L/collections/C")
        refuse_filter(request.filter, "ListDataStores")
        with self.lock:
            stores = self._stores.copies(request.parent + "/dataStores/")
        return _PAGING.respond(de.ListDataStoresResponse, "data_stores", stores, request)

    def delete_data_store(self, request: de.DeleteDataStoreRequest, context: Any) -> Any:
        now = self.cloud.clock.now()
        with self._cond:
            self._store(request.name)
            self._stores.remove(request.name)
            self._docs.pop(request.name, None)
            self._texts.pop(request.name, None)
            collection = request.name.rsplit("/dataStores/", 1)[0]
            meta = de.DeleteDataStoreMetadata(create_time=now, update_time=now)
            op_name = self._op_name(collection, "delete-data-store")
            self.changed()
            return self.operations.new(op_name, meta, empty_pb2.Empty())
