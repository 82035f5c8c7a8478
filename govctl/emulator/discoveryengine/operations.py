"""``google.longrunning.Operations`` in front of Cloud Build's (and Run's).

This service's own operation names contain ``/collections/``; every other name goes on to Cloud
Build's handler, which hands Run's on in turn (:class:`govctl.emulator.rpc.OwnOperations`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.longrunning import operations_pb2

from govctl.emulator import rpc
from govctl.emulator.rpc import invalid_argument

if TYPE_CHECKING:
    from govctl.emulator.discoveryengine.resources import DiscoveryEngineResources


def own(svc: DiscoveryEngineResources) -> rpc.OwnOperations:
    def listing(request: operations_pb2.ListOperationsRequest) -> list[operations_pb2.Operation]:
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListOperations.")
        prefix = request.name.rstrip("/") + "/"
        return [op for name, op in svc._ops.items() if name.startswith(prefix)]

    return rpc.OwnOperations(
        svc._ops,
        svc._cond,
        svc._stopping,
        svc.changed,
        mine=_mine,
        list_mine=_mine,
        listing=listing,
        fallback=lambda: svc.cloud.service("cloudbuild").operations,
    )


def _mine(name: str) -> bool:
    return "/collections/" in name
