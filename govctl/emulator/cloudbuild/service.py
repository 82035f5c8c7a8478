"""Cloud Build v1 (``google.devtools.cloudbuild.v1.CloudBuild``) for the loopback cloud.

CreateBuild answers with a pending operation (metadata ``BuildOperationMetadata``); the build
runs on a thread (:mod:`.builder`: QUEUED → WORKING → SUCCESS or FAILURE; by default it fetches
the ``storage_source`` tarball, :mod:`.source`, and records the images in Artifact Registry
instead of running the steps) and its operation then finishes with the ``Build``. The RPCs are
in :mod:`.builds`, the stored builds and operations in :mod:`.resources`. Operation names are
Cloud Build's (``operations/build/PROJECT/ID``), served by the emulator's one
``google.longrunning.Operations`` (:mod:`govctl.emulator.operations`). This module wires the
handlers and keeps the lifecycle and the state file. See docs/emulator/cloudbuild.md.
"""

from __future__ import annotations

from typing import Any

from govctl.emulator.apis import Bound
from govctl.emulator.cloudbuild.builds import BuildsRpcs
from govctl.emulator.cloudbuild.resources import TERMINAL, Status


class CloudBuildService(BuildsRpcs):
    key = "cloudbuild"

    # gRPC, lifecycle, persistence -------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        return [self.builds_rpcs()]

    def start(self) -> None:
        # A build cut short by a stop is not resumed: it ends as Cloud Build ends a build whose
        # worker was lost.
        with self._cond:
            for build in self._builds:
                if build.status not in TERMINAL:
                    self._finish(
                        build, Status.INTERNAL_ERROR, "the emulator stopped during the build"
                    )

    def stopping(self) -> None:
        self.operations.wake()

    def stop(self) -> None:
        self.operations.wake()
        if self._engine is not None:
            self._engine.kill()
        self.operations.join(timeout=2)

    def dump(self) -> Any:
        return {"builds": self._builds.dump(), "operations": self.operations.dump()}

    def load(self, data: Any) -> None:
        data = data or {}
        self._builds.load(data.get("builds", []))
        self.operations.load(data.get("operations", []))
