"""The resources of the emulated Discovery Engine and the lookups its RPC modules share.

:class:`DiscoveryEngineResources` holds data stores, documents (with their indexed text) and
operations in memory under the service lock. The RPCs build on it: :mod:`.data_stores`,
:mod:`.documents` (with :mod:`.importer`, the import from Cloud Storage) and :mod:`.search`;
:mod:`.service` wires them into the :class:`~govctl.emulator.cloud.Service` the emulator loads.
This service's operation names contain ``/collections/``: the emulator's
``google.longrunning.Operations`` (:mod:`govctl.emulator.operations`) sends those here.
"""

from __future__ import annotations

import random
import re
from typing import Any

from google.cloud import discoveryengine_v1 as de

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.operations import Operations
from govctl.emulator.rpc import matched, not_found
from govctl.emulator.store import Store

COLLECTION_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/collections/([^/]+)")
STORE_RE = re.compile(COLLECTION_RE.pattern + r"/dataStores/([^/]+)")
BRANCH_RE = re.compile(STORE_RE.pattern + r"/branches/([^/]+)")
DOC_RE = re.compile(BRANCH_RE.pattern + r"/documents/([^/]+)")
SERVING_RE = re.compile(STORE_RE.pattern + r"/servingConfigs/([^/]+)")


GLOBAL_HOST = "discoveryengine.googleapis.com"
_LOCATION_RE = re.compile(r"(?:^|/)locations/([^/]+)(?:/|$)")


def endpoint_problem(host: str, location: str) -> str | None:
    """Why a request for ``location`` may not be served on ``host`` (the authority the client
    dialled), or None. A data store in ``us`` or ``eu`` is served only by
    ``{location}-discoveryengine.googleapis.com``; the global endpoint refuses it with the
    message below (reported verbatim in google/adk-python issues #3167 and #4697). A loopback
    address says nothing about which endpoint the client meant: not checked."""
    host = host.removesuffix(":443")
    if not host.endswith(GLOBAL_HOST):
        return None
    serves = "global" if host == GLOBAL_HOST else host.removesuffix("-" + GLOBAL_HOST)
    if serves == location:
        return None
    return (
        f'Incorrect API endpoint used. The current endpoint can only serve traffic from "{serves}" '
        f'region, but got "{location}" region from the API request. Please follow '
        "https://cloud.google.com/generative-ai-app-builder/docs/locations to use the correct "
        "regional API endpoint."
    )


def authority(context: Any) -> str:
    """The host a gRPC client dialled (its ``:authority``). grpcio has no public accessor for
    it; its server call details carry it. "" when unknown (e.g. the REST gateway's calls)."""
    details = getattr(getattr(context, "_rpc_event", None), "call_details", None)
    host = getattr(details, "host", b"")
    return host.decode(errors="replace") if isinstance(host, bytes) else str(host or "")


def request_location(request: Any) -> str | None:
    """The location in a request's resource name (``name``, ``parent`` or ``serving_config``)."""
    for field in ("name", "parent", "serving_config"):
        m = _LOCATION_RE.search(str(getattr(request, field, "") or ""))
        if m:
            return m.group(1)
    return None


def parse(pattern: re.Pattern[str], name: str, what: str, form: str) -> re.Match[str]:
    """``name`` matched against ``pattern``, or INVALID_ARGUMENT naming the expected ``form``."""
    return matched(pattern, name, f'Invalid {what} {name!r}: expected "{form}".')


_STORE_FORM = "projects/P/locations/L/collections/C/dataStores/D"


class DiscoveryEngineResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._stores: Store[Any, de.DataStore] = Store(
            de.DataStore,
            missing="DataStore {name} not found.",
            exists="DataStore {name} already exists.",
        )
        self._docs: dict[str, dict[str, Any]] = {}  # data store name -> id -> raw Document pb
        self._texts: dict[str, dict[str, str]] = {}  # data store name -> id -> indexed text
        self.operations: Operations = Operations(self, claims=lambda name: "/collections/" in name)
        self._cond = self.operations.cond
        self._stopping = self.operations.stopping

    # names ------------------------------------------------------------------------------------
    def _store(self, name: str) -> Any:
        parse(STORE_RE, name, "data store name", _STORE_FORM)
        return self._stores.require(name)

    def _branch(self, name: str) -> str:
        """The data store of a branch name; ``default_branch`` and ``0`` are the one branch."""
        m = parse(BRANCH_RE, name, "branch name", _STORE_FORM + "/branches/B")
        if m.group(5) not in ("0", "default_branch"):
            raise not_found(f"Branch {name} not found: a data store has one branch, 0.")
        store = name.rsplit("/branches/", 1)[0]
        self._store(store)
        return store

    # operations ------------------------------------------------------------------------------
    def _op_name(self, parent: str, kind: str) -> str:
        return f"{parent}/operations/{kind}-{random.randrange(10**18, 10**19)}"

    def _end(
        self,
        op_name: str,
        meta: Any,
        *,
        response: Any | None = None,
        error: tuple[int, str] | None = None,
    ) -> None:
        meta.update_time.FromDatetime(self.cloud.clock.now())
        self.operations.finish(op_name, meta, response, error)
