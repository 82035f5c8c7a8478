"""DataStoreService: create, get, list and delete data stores (one collection, three locations)."""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.cloud import discoveryengine_v1 as de
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from govctl.emulator import rpc
from govctl.emulator.discoveryengine.resources import (
    COLLECTION_RE,
    DiscoveryEngineResources,
    copy,
)
from govctl.emulator.rpc import Method, already_exists, invalid_argument

_STORE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
LOCATIONS = ("global", "us", "eu")


def _location(project: str, location: str) -> None:
    if location not in LOCATIONS:
        raise invalid_argument(
            f"Location {location!r} is not supported: expected one of {', '.join(LOCATIONS)}."
        )


class DataStoresRpcs(DiscoveryEngineResources):
    def data_stores_handler(self) -> grpc.GenericRpcHandler:
        o = operations_pb2
        return rpc.service(
            "google.cloud.discoveryengine.v1.DataStoreService",
            {
                "CreateDataStore": Method(
                    self.create_data_store, de.CreateDataStoreRequest, o.Operation
                ),
                "GetDataStore": Method(self.get_data_store, de.GetDataStoreRequest, de.DataStore),
                "ListDataStores": Method(
                    self.list_data_stores, de.ListDataStoresRequest, de.ListDataStoresResponse
                ),
                "DeleteDataStore": Method(
                    self.delete_data_store, de.DeleteDataStoreRequest, o.Operation
                ),
            },
        )

    def create_data_store(self, request: de.CreateDataStoreRequest, context: Any) -> Any:
        m = COLLECTION_RE.fullmatch(request.parent)
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
                de.DataStore.wrap(copy(out)),
            )
            self._ops[op.name] = op
            self.changed()
            return copy(op)

    def get_data_store(self, request: de.GetDataStoreRequest, context: Any) -> Any:
        with self.lock:
            return de.DataStore.wrap(copy(self._store(request.name)))

    def list_data_stores(self, request: de.ListDataStoresRequest, context: Any) -> Any:
        m = COLLECTION_RE.fullmatch(request.parent)
        if not m:
            raise invalid_argument(f"Invalid parent {request.parent!r}.")
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListDataStores.")
        with self.lock:
            stores = [
                de.DataStore.wrap(copy(s))
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
            return copy(op)
