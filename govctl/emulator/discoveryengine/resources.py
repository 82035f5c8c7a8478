"""The resources of the emulated Discovery Engine and the lookups its RPC modules share.

:class:`DiscoveryEngineResources` holds data stores, documents (with their indexed text) and
operations in memory under the service lock. The RPCs build on it: :mod:`.data_stores`,
:mod:`.documents` (with :mod:`.importer`, the import from Cloud Storage), :mod:`.search` and
:mod:`.operations`; :mod:`.service` wires them into the
:class:`~govctl.emulator.cloud.Service` the emulator loads.
"""

from __future__ import annotations

import random
import re
import threading
from typing import Any

from google.longrunning import operations_pb2
from google.rpc import status_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.discoveryengine import operations
from govctl.emulator.rpc import invalid_argument, not_found

COLLECTION_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/collections/([^/]+)")
STORE_RE = re.compile(COLLECTION_RE.pattern + r"/dataStores/([^/]+)")
BRANCH_RE = re.compile(STORE_RE.pattern + r"/branches/([^/]+)")
DOC_RE = re.compile(BRANCH_RE.pattern + r"/documents/([^/]+)")
SERVING_RE = re.compile(STORE_RE.pattern + r"/servingConfigs/([^/]+)")


def copy(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


class DiscoveryEngineResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._stores: dict[str, Any] = {}  # data store name -> raw DataStore pb
        self._docs: dict[str, dict[str, Any]] = {}  # data store name -> id -> raw Document pb
        self._texts: dict[str, dict[str, str]] = {}  # data store name -> id -> indexed text
        self._ops: dict[str, operations_pb2.Operation] = {}
        self._cond = threading.Condition(self.lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.operations = operations.own(self)

    # names ------------------------------------------------------------------------------------
    def _store(self, name: str) -> Any:
        m = STORE_RE.fullmatch(name)
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
        m = BRANCH_RE.fullmatch(name)
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

    # operations -------------------------------------------------------------------------------
    def _op_id(self, kind: str) -> str:
        return f"{kind}-{random.randrange(10**18, 10**19)}"

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
