"""The CloudBuild RPCs: CreateBuild (which starts the build's thread, :mod:`.builder`),
GetBuild, ListBuilds and CancelBuild."""

from __future__ import annotations

import re
import uuid
from typing import Any

from google.cloud.devtools import cloudbuild_v1 as cb

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloudbuild import identity
from govctl.emulator.cloudbuild.builder import Builder
from govctl.emulator.cloudbuild.resources import TERMINAL, Status, op_name, wrap
from govctl.emulator.rpc import invalid_argument, matched, paged, refuse_filter

_PARENT_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)")
_DEFAULT_SA_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/defaultServiceAccount")


def _where(parent: str, project_id: str) -> tuple[str, str]:
    """(project, location) of a request that names either a parent or a project id."""
    if parent:
        form = "projects/<PROJECT>/locations/<LOCATION>"
        m = matched(_PARENT_RE, parent, f'Invalid parent {parent!r}: expected "{form}".')
        if project_id and project_id != m.group(1):
            raise invalid_argument(f"project_id {project_id!r} does not match parent {parent!r}.")
        return m.group(1), m.group(2)
    if not project_id:
        raise invalid_argument("project_id is required.")
    return project_id, "global"


class BuildsRpcs(Builder):
    def builds_rpcs(self) -> Bound:
        return gapic_api("google.cloud.devtools.cloudbuild_v1.services.cloud_build").bind(
            {
                "CreateBuild": self.create_build,
                "GetBuild": self.get_build,
                "ListBuilds": self.list_builds,
                "CancelBuild": self.cancel_build,
                "GetDefaultServiceAccount": self.get_default_service_account,
            }
        )

    def create_build(self, request: cb.CreateBuildRequest, context: Any) -> Any:
        project, location = _where(request.parent, request.project_id)
        build = self._builds.stored(request.build)
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
        build.project_id = project
        identity.check(self.cloud, build)
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
        if (
            not build.logs_bucket
            and not build.service_account
            and identity.writes_cloud_logging(build)
        ):
            # Cloud Build's default logs bucket (the emulator writes no log file into it).
            build.logs_bucket = f"gs://{project}_cloudbuild/logs"
        if not build.HasField("timeout"):
            build.timeout.FromSeconds(600)
        with self._cond:
            self._builds.add(build)
            out = self.operations.new(op_name(project, build_id), self._metadata(build))
            self.changed()
        self.operations.work(self._run, build_id, name=f"build-{build_id[:8]}")
        return out

    def get_build(self, request: cb.GetBuildRequest, context: Any) -> Any:
        with self.lock:
            return wrap(self._build(request.project_id, request.id, request.name))

    def list_builds(self, request: cb.ListBuildsRequest, context: Any) -> Any:
        project, location = _where(request.parent, request.project_id)
        refuse_filter(request.filter, "ListBuilds")
        prefix = f"projects/{project}/locations/{location}/builds/"
        with self.lock:
            builds = [wrap(b) for b in self._builds if b.name.startswith(prefix)]
        # Newest first, as Cloud Build lists them.
        builds.sort(key=lambda b: (b.create_time, b.id), reverse=True)
        return paged(cb.ListBuildsResponse, "builds", builds, request)

    def get_default_service_account(
        self, request: cb.GetDefaultServiceAccountRequest, context: Any
    ) -> Any:
        """The account a build that names none runs as: the Compute Engine default, as for a
        project new to Cloud Build since 2024 (REST reference of
        projects.locations.getDefaultServiceAccount; see :mod:`.identity`)."""
        form = "projects/<PROJECT>/locations/<LOCATION>/defaultServiceAccount"
        m = matched(
            _DEFAULT_SA_RE, request.name, f'Invalid name {request.name!r}: expected "{form}".'
        )
        email = identity.default_account(self.cloud, m.group(1))
        return cb.DefaultServiceAccount(
            name=request.name,
            service_account_email=f"projects/{m.group(1)}/serviceAccounts/{email}",
        )

    def cancel_build(self, request: cb.CancelBuildRequest, context: Any) -> Any:
        with self._cond:
            build = self._build(request.project_id, request.id, request.name)
            if build.status not in TERMINAL:
                self._finish(build, Status.CANCELLED, "Build was cancelled.")
            return wrap(build)
