"""Cloud Build v1 (``google.devtools.cloudbuild.v1.CloudBuild``) for the loopback cloud.

CreateBuild answers with a pending operation (metadata ``BuildOperationMetadata``); the build
runs on a thread (:mod:`.builder`: QUEUED → WORKING → SUCCESS or FAILURE; by default it fetches
the ``storage_source`` tarball, :mod:`.source`, and records the images in Artifact Registry
instead of running the steps) and its operation then finishes with the ``Build``. The RPCs are
in :mod:`.builds`, the stored builds and operations in :mod:`.resources`. Operation names are
Cloud Build's (``operations/build/PROJECT/ID``); :mod:`.operations` answers
``google.longrunning.Operations`` for them and hands every other name to the Run service's store
(one gRPC server carries every API, so only one handler can own that service name). This module
wires the handlers and keeps the lifecycle and the state file. See docs/emulator/cloudbuild.md.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.cloud.devtools import cloudbuild_v1 as cb
from google.longrunning import operations_pb2

from govctl.emulator.cloudbuild.builds import BuildsRpcs
from govctl.emulator.cloudbuild.resources import TERMINAL, Status
from govctl.emulator.state import from_jsonable, to_jsonable


class CloudBuildService(BuildsRpcs):
    key = "cloudbuild"

    # gRPC, lifecycle, persistence -------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [self.builds_handler(), self.operations.handler()]

    def start(self) -> None:
        # A build cut short by a stop is not resumed: it ends as Cloud Build ends a build whose
        # worker was lost.
        with self._cond:
            for build in self._builds.values():
                if build.status not in TERMINAL:
                    self._finish(
                        build, Status.INTERNAL_ERROR, "the emulator stopped during the build"
                    )

    def stopping(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        self._stopping.set()
        if self._engine is not None:
            self._engine.kill()
        for thread in self._threads:
            thread.join(timeout=2)

    def dump(self) -> Any:
        return {
            "builds": [to_jsonable(b) for b in self._builds.values()],
            "operations": [to_jsonable(op) for op in self._ops.values()],
        }

    def load(self, data: Any) -> None:
        data = data or {}
        for rec in data.get("builds", []):
            build = cb.Build.pb(from_jsonable(cb.Build, rec))
            self._builds[build.id] = build
        for rec in data.get("operations", []):
            op = from_jsonable(operations_pb2.Operation, rec)
            self._ops[op.name] = op
