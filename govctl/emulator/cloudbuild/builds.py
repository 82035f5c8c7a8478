"""The CloudBuild RPCs: CreateBuild (which starts the build's thread, :mod:`.builder`),
GetBuild, ListBuilds and CancelBuild."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import grpc
from google.cloud.devtools import cloudbuild_v1 as cb
from google.longrunning import operations_pb2

from govctl.emulator import rpc
from govctl.emulator.cloudbuild.builder import Builder
from govctl.emulator.cloudbuild.resources import TERMINAL, BuildPb, Status, op_name, wrap
from govctl.emulator.rpc import Method, invalid_argument

_PARENT_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)")


def _where(parent: str, project_id: str) -> tuple[str, str]:
    """(project, location) of a request that names either a parent or a project id."""
    if parent:
        m = _PARENT_RE.fullmatch(parent)
        if not m:
            raise invalid_argument(
                f'Invalid parent {parent!r}: expected "projects/<PROJECT>/locations/<LOCATION>".'
            )
        if project_id and project_id != m.group(1):
            raise invalid_argument(f"project_id {project_id!r} does not match parent {parent!r}.")
        return m.group(1), m.group(2)
    if not project_id:
        raise invalid_argument("project_id is required.")
    return project_id, "global"


class BuildsRpcs(Builder):
    def builds_handler(self) -> grpc.GenericRpcHandler:
        o = operations_pb2
        return rpc.service(
            "google.devtools.cloudbuild.v1.CloudBuild",
            {
                "CreateBuild": Method(self.create_build, cb.CreateBuildRequest, o.Operation),
                "GetBuild": Method(self.get_build, cb.GetBuildRequest, cb.Build),
                "ListBuilds": Method(self.list_builds, cb.ListBuildsRequest, cb.ListBuildsResponse),
                "CancelBuild": Method(self.cancel_build, cb.CancelBuildRequest, cb.Build),
            },
        )

    def create_build(self, request: cb.CreateBuildRequest, context: Any) -> Any:
        project, location = _where(request.parent, request.project_id)
        build = BuildPb()
        build.CopyFrom(cb.Build.pb(request.build))
        if not build.steps:
            raise invalid_argument("Build must have at least one step.")
        for i, step in enumerate(build.steps):
            if not step.name:
                raise invalid_argument(f"Build step {i} must have a name.")
        if build.source.WhichOneof("source") != "storage_source":
            raise invalid_argument(
                "The emulator builds only from source.storage_source (a tarball in Cloud Storage)."
            )
        if not build.source.storage_source.bucket or not build.source.storage_source.object_:
            raise invalid_argument("source.storage_source needs a bucket and an object.")
        build_id = str(uuid.uuid4())
        for f in ("results", "start_time", "finish_time", "status_detail", "failure_info"):
            build.ClearField(f)
        build.id = build_id
        build.project_id = project
        build.name = f"projects/{project}/locations/{location}/builds/{build_id}"
        build.status = Status.QUEUED
        build.create_time.FromDatetime(self.cloud.clock.now())
        build.log_url = (
            f"https://console.cloud.google.com/cloud-build/builds;region={location}/"
            f"{build_id}?project={project}"
        )
        if not build.logs_bucket:
            build.logs_bucket = f"gs://{project}_cloudbuild/logs"
        if not build.HasField("timeout"):
            build.timeout.FromSeconds(600)
        with self._cond:
            self._builds[build_id] = build
            op = rpc.operation(op_name(project, build_id), self._metadata(build))
            self._ops[op.name] = op
            self.changed()
            out = operations_pb2.Operation()
            out.CopyFrom(op)
        thread = threading.Thread(target=self._run, args=(build_id,), name=f"build-{build_id[:8]}")
        thread.daemon = True
        self._threads.append(thread)
        thread.start()
        return out

    def get_build(self, request: cb.GetBuildRequest, context: Any) -> Any:
        with self.lock:
            return wrap(self._build(request.project_id, request.id, request.name))

    def list_builds(self, request: cb.ListBuildsRequest, context: Any) -> Any:
        project, location = _where(request.parent, request.project_id)
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListBuilds.")
        prefix = f"projects/{project}/locations/{location}/builds/"
        with self.lock:
            builds = [wrap(b) for b in self._builds.values() if b.name.startswith(prefix)]
        # Newest first, as Cloud Build lists them.
        builds.sort(key=lambda b: (b.create_time, b.id), reverse=True)
        items, token = rpc.page(builds, request.page_size, request.page_token)
        return cb.ListBuildsResponse(builds=items, next_page_token=token)

    def cancel_build(self, request: cb.CancelBuildRequest, context: Any) -> Any:
        with self._cond:
            build = self._build(request.project_id, request.id, request.name)
            if build.status not in TERMINAL:
                self._finish(build, Status.CANCELLED, "Build was cancelled.")
            return wrap(build)
