"""The builds and operations of the emulated Cloud Build, and the helpers its modules share.

:class:`CloudBuildResources` holds builds and their operations in memory under the service
lock and turns a build's status into its operation (:meth:`~CloudBuildResources._finish`). The
build itself runs in :mod:`.builder` (with the source from :mod:`.source`); :mod:`.builds` has
the RPCs and :mod:`.service` wires them into the :class:`~govctl.emulator.cloud.Service` the
emulator loads. Cloud Build's operation names are ``operations/build/PROJECT/BASE64(ID)``: the
emulator's ``google.longrunning.Operations`` (:mod:`govctl.emulator.operations`) sends those
here and every other name on.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from google.cloud.devtools import cloudbuild_v1 as cb
from google.rpc import code_pb2

from govctl.emulator import store
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.cloudbuild import engine
from govctl.emulator.operations import Operations
from govctl.emulator.rpc import invalid_argument, not_found
from govctl.emulator.store import Store, copy

BuildPb: Any = cb.Build.pb()
Status = cb.Build.Status
FailureType = cb.Build.FailureInfo.FailureType
TERMINAL = {
    Status.SUCCESS,
    Status.FAILURE,
    Status.INTERNAL_ERROR,
    Status.TIMEOUT,
    Status.CANCELLED,
    Status.EXPIRED,
}
NAME_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/builds/([^/]+)")
OP_PREFIX = "operations/build/"


class Failed(Exception):
    """Why a build failed: its ``FailureInfo`` type and detail."""

    def __init__(self, kind: int, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def op_name(project: str, build_id: str) -> str:
    return OP_PREFIX + project + "/" + base64.b64encode(build_id.encode()).decode()


def wrap(build: Any) -> cb.Build:
    return store.wrap(cb.Build, copy(build))


def _build_id(build: Any) -> str:
    return str(build.id)


class CloudBuildResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._builds: Store[Any, cb.Build] = Store(cb.Build, key=_build_id)  # by build id
        self.operations: Operations = Operations(
            self,
            claims=lambda name: name.startswith(OP_PREFIX),
            claims_list=lambda name: name.startswith(OP_PREFIX.rstrip("/")),
        )
        self._cond = self.operations.cond
        self._stopping = self.operations.stopping
        # --build-with: run docker build steps with a local engine instead of recording them.
        self._engine = engine.Engine(cloud.build_with) if cloud.build_with else None
        # Builds whose lines do not reach Cloud Logging (their account may not write logs, or
        # their logging option sends them elsewhere).
        self._unlogged: set[str] = set()

    def _build(self, project: str, build_id: str, name: str) -> Any:
        if name:
            m = NAME_RE.fullmatch(name)
            if not m:
                raise invalid_argument(
                    f'Invalid build name {name!r}: expected "projects/P/locations/L/builds/ID".'
                )
            project, build_id = m.group(1), m.group(3)
        if not build_id:
            raise invalid_argument("The build id is required.")
        build = self._builds.get(build_id)
        if build is None or (project and build.project_id != project):
            raise not_found(f"Build {build_id} not found in project {project}.")
        return build

    def _finish(self, build: Any, status: int, detail: str) -> None:
        """Set a terminal status and finish the build's operation (caller holds the lock)."""
        build.status = status
        build.status_detail = detail
        build.finish_time.FromDatetime(self.cloud.clock.now())
        name = op_name(build.project_id, build.id)
        if status == Status.SUCCESS:
            self.operations.finish(name, self._metadata(build), copy(build))
        else:
            # What Cloud Build's operation carries for a build that did not succeed.
            message = f"Build {'failed' if status == Status.FAILURE else Status(status).name}"
            error = (code_pb2.UNKNOWN, f"{message}; check build logs for details")
            self.operations.finish(name, self._metadata(build), error=error)
        self.changed()

    def _sync(self, build: Any) -> None:
        self.operations.update_metadata(op_name(build.project_id, build.id), self._metadata(build))
        self.changed()

    @staticmethod
    def _metadata(build: Any) -> cb.BuildOperationMetadata:
        return cb.BuildOperationMetadata(build=wrap(build))
