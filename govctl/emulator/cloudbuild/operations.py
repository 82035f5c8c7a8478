"""``google.longrunning.Operations`` for Cloud Build's operations, in front of Run's.

Cloud Build's operation names are ``operations/build/PROJECT/BASE64(ID)``; every other name goes
to the Run service's store (:class:`govctl.emulator.rpc.OwnOperations`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.longrunning import operations_pb2

from govctl.emulator import rpc

if TYPE_CHECKING:
    from govctl.emulator.cloudbuild.resources import CloudBuildResources

OP_PREFIX = "operations/build/"


def own(svc: CloudBuildResources) -> rpc.OwnOperations:
    def listing(request: operations_pb2.ListOperationsRequest) -> list[operations_pb2.Operation]:
        return [op for n, op in sorted(svc._ops.items()) if n.startswith(request.name)]

    return rpc.OwnOperations(
        svc._ops,
        svc._cond,
        svc._stopping,
        svc.changed,
        mine=lambda name: name.startswith(OP_PREFIX),
        list_mine=lambda name: name.startswith("operations/build"),
        listing=listing,
        fallback=lambda: svc.cloud.service("run").operations,
    )
