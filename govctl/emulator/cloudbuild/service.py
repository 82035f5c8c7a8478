"""Cloud Build v1 (``google.devtools.cloudbuild.v1.CloudBuild``) for the loopback cloud.

The emulator runs tasks as local processes, not containers, so by default a build does not run
its steps: it fetches the ``storage_source`` tarball from fake-gcs-server, derives the image
digest from it (``sha256`` of the tarball's bytes, so the same source gives the same digest),
records every image of ``build.images`` in Artifact Registry with its tag
(``cloud.service("artifactregistry").record_image``), and says so in the build's log, written to
Cloud Logging as Cloud Build writes it (``resource.type="build"``, log id ``cloudbuild``).

CreateBuild answers with a pending operation (metadata ``BuildOperationMetadata``); the build
runs on a thread (QUEUED → WORKING → SUCCESS or FAILURE) and its operation then finishes with the
``Build``. Operation names are Cloud Build's (``operations/build/PROJECT/ID``); this service
answers ``google.longrunning.Operations`` for them and hands every other operation name to the
Run service's store (one gRPC server carries every API, so only one handler can own that
service name). See docs/emulator/cloudbuild.md.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from google.cloud.devtools import cloudbuild_v1 as cb
from google.cloud.logging_v2 import types as log_types
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import code_pb2, status_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.cloudbuild import engine
from govctl.emulator.rpc import Method, RpcError, invalid_argument, not_found
from govctl.emulator.state import from_jsonable, to_jsonable

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
_PARENT_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)")
_NAME_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/builds/([^/]+)")
_OP_PREFIX = "operations/build/"
# Pauses between a build's phases, so a client sees it QUEUED and WORKING as in production.
PHASE_SECONDS = 0.05


class _Failed(Exception):
    def __init__(self, kind: int, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _op_name(project: str, build_id: str) -> str:
    return _OP_PREFIX + project + "/" + base64.b64encode(build_id.encode()).decode()


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


class CloudBuildService(Service):
    key = "cloudbuild"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._builds: dict[str, Any] = {}  # build id -> raw Build pb
        self._ops: dict[str, operations_pb2.Operation] = {}
        self._cond = threading.Condition(self.lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # --build-with: run docker build steps with a local engine instead of recording them.
        self._engine = engine.Engine(cloud.build_with) if cloud.build_with else None

    # RPCs -------------------------------------------------------------------------------------
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
            op = rpc.operation(_op_name(project, build_id), self._metadata(build))
            self._ops[op.name] = op
            self.changed()
            out = operations_pb2.Operation()
            out.CopyFrom(op)
        thread = threading.Thread(target=self._run, args=(build_id,), name=f"build-{build_id[:8]}")
        thread.daemon = True
        self._threads.append(thread)
        thread.start()
        return out

    def _build(self, project: str, build_id: str, name: str) -> Any:
        if name:
            m = _NAME_RE.fullmatch(name)
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

    def get_build(self, request: cb.GetBuildRequest, context: Any) -> Any:
        with self.lock:
            return _wrap(self._build(request.project_id, request.id, request.name))

    def list_builds(self, request: cb.ListBuildsRequest, context: Any) -> Any:
        project, location = _where(request.parent, request.project_id)
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListBuilds.")
        prefix = f"projects/{project}/locations/{location}/builds/"
        with self.lock:
            builds = [_wrap(b) for b in self._builds.values() if b.name.startswith(prefix)]
        # Newest first, as Cloud Build lists them.
        builds.sort(key=lambda b: (b.create_time, b.id), reverse=True)
        items, token = rpc.page(builds, request.page_size, request.page_token)
        return cb.ListBuildsResponse(builds=items, next_page_token=token)

    def cancel_build(self, request: cb.CancelBuildRequest, context: Any) -> Any:
        with self._cond:
            build = self._build(request.project_id, request.id, request.name)
            if build.status not in TERMINAL:
                self._finish(build, Status.CANCELLED, "Build was cancelled.")
            return _wrap(build)

    # the build itself -------------------------------------------------------------------------
    def _run(self, build_id: str) -> None:
        try:
            self._steps(build_id)
        except Exception as err:  # a bug here must not leave the build WORKING forever
            with self._cond:
                build = self._builds[build_id]
                if build.status not in TERMINAL:
                    self._finish(build, Status.INTERNAL_ERROR, f"emulator error: {err!r}")
            raise

    def _steps(self, build_id: str) -> None:
        with self._cond:
            build = self._builds[build_id]
            src = build.source.storage_source
            source = f"gs://{src.bucket}/{src.object_}" + (
                f"#{src.generation}" if src.generation else ""
            )
            images = list(build.images)
        self._log(build, f'starting build "{build_id}"')
        if self._pause():
            return
        with self._cond:
            if build.status != Status.QUEUED:
                return  # cancelled while queued
            build.status = Status.WORKING
            build.start_time.FromDatetime(self.cloud.clock.now())
            self._sync(build)
        try:
            self._log(build, "FETCHSOURCE")
            self._log(build, f"Fetching storage object: {source}")
            data = self._fetch(src.bucket, src.object_, src.generation)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            self._log(build, f"Fetched {len(data)} bytes of source.")
            self._log(build, "BUILD")
            if self._engine is None:
                self._record_steps(build)
                digests = dict.fromkeys(images, digest)
            else:
                digests = self._build_steps(build, self._engine, data, images)
            if self._pause():
                return
            self._log(build, "PUSH")
            built = self._record(build, digests, len(data))
        except _Failed as failed:
            self._log(build, f"ERROR: {failed.detail}", severity="ERROR")
            with self._cond:
                if build.status == Status.WORKING:
                    build.failure_info.type_ = failed.kind
                    build.failure_info.detail = failed.detail
                    self._finish(build, Status.FAILURE, failed.detail)
            return
        # Logged before the status turns, so a client that sees SUCCESS can read the whole log.
        self._log(build, "DONE")
        with self._cond:
            if build.status != Status.WORKING:
                return
            build.results.images.extend(built)
            self._finish(build, Status.SUCCESS, "")

    def _pause(self) -> bool:
        """Wait a phase; True when the emulator is stopping (the build is then left as is)."""
        return self._stopping.wait(PHASE_SECONDS)

    def _fetch(self, bucket: str, obj: str, generation: int) -> bytes:
        base = self.cloud.storage_url
        if not base:
            raise _Failed(FailureType.FETCH_SOURCE_FAILED, "the emulator runs without storage")
        url = f"{base}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(obj, safe='')}?alt=media"
        if generation:
            url += f"&generation={generation}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise _Failed(
                    FailureType.FETCH_SOURCE_FAILED,
                    f"failed to fetch source: object gs://{bucket}/{obj} does not exist",
                ) from None
            raise _Failed(
                FailureType.FETCH_SOURCE_FAILED, f"failed to fetch source: HTTP {err.code}"
            ) from None
        except OSError as err:
            raise _Failed(
                FailureType.FETCH_SOURCE_FAILED, f"failed to fetch source: {err}"
            ) from None

    def _record_steps(self, build: Any) -> None:
        for i, step in enumerate(build.steps):
            self._log(build, f"Starting Step #{i}")
            self._log(
                build,
                f"Step #{i}: [loopback cloud] step {step.name} {' '.join(step.args)} "
                "was not run: images are recorded, not built (start the emulator with "
                "--build-with podman to build them).",
            )
            self._log(build, f"Finished Step #{i}")

    def _build_steps(
        self, build: Any, engine_: engine.Engine, data: bytes, images: list[str]
    ) -> dict[str, str]:
        """Run the docker build steps with the local engine; the images' digests."""
        with tempfile.TemporaryDirectory(prefix="govctl-cloudbuild-") as tmp:
            try:
                engine.unpack(data, Path(tmp))
            except (tarfile.TarError, OSError, EOFError) as err:
                raise _Failed(
                    FailureType.FETCH_SOURCE_FAILED, f"the source is not a tarball: {err}"
                ) from None
            for i, step in enumerate(build.steps):
                self._log(build, f"Starting Step #{i}")
                if not engine.is_docker_build(step.name, list(step.args)):
                    self._log(build, f"Step #{i}: [loopback cloud] only docker builds run here")
                else:
                    prefix = f"Step #{i}: "

                    def emit(line: str, prefix: str = prefix) -> None:
                        self._log(build, prefix + line)

                    code = engine_.run(list(step.args), Path(tmp, step.dir_), emit)
                    if code != 0:
                        raise _Failed(
                            FailureType.USER_BUILD_STEP,
                            f'build step {i} "{step.name}" failed: step exited with non-zero '
                            f"status: {code}",
                        )
                self._log(build, f"Finished Step #{i}")
        digests = {}
        for image in images:
            digest = engine_.digest(image)
            if digest is None:
                raise _Failed(
                    FailureType.PUSH_IMAGE_NOT_FOUND,
                    f"failed to find one or more images after execution of build steps: {image}",
                )
            digests[image] = digest
        return digests

    def _record(self, build: Any, digests: dict[str, str], size: int) -> list[Any]:
        registry = self.cloud.service("artifactregistry")
        built = []
        for image, digest in digests.items():
            path, tag = _split_tag(image)
            self._log(build, f"Pushing {image}")
            try:
                registry.record_image(path, digest, [tag], size)
            except RpcError as err:
                raise _Failed(
                    FailureType.PUSH_FAILED, f"failed to push {image}: {err.message}"
                ) from None
            how = "recorded, not built" if self._engine is None else "built locally, not pushed"
            self._log(build, f"{tag}: digest: {digest} ({how})")
            built.append(cb.BuiltImage.pb(cb.BuiltImage(name=image, digest=digest)))
        return built

    def _finish(self, build: Any, status: int, detail: str) -> None:
        """Set a terminal status and finish the build's operation (caller holds the lock)."""
        build.status = status
        build.status_detail = detail
        build.finish_time.FromDatetime(self.cloud.clock.now())
        op = self._ops.get(_op_name(build.project_id, build.id))
        if op is not None and not op.done:
            op.metadata.CopyFrom(rpc.pack(self._metadata(build)))
            if status == Status.SUCCESS:
                op.response.CopyFrom(rpc.pack(cb.Build.pb(_wrap(build))))
            else:
                # What Cloud Build's operation carries for a build that did not succeed.
                message = f"Build {'failed' if status == Status.FAILURE else Status(status).name}"
                op.error.CopyFrom(
                    status_pb2.Status(
                        code=code_pb2.UNKNOWN,
                        message=f"{message}; check build logs for details",
                    )
                )
            op.done = True
        self.changed()
        self._cond.notify_all()

    def _sync(self, build: Any) -> None:
        op = self._ops.get(_op_name(build.project_id, build.id))
        if op is not None and not op.done:
            op.metadata.CopyFrom(rpc.pack(self._metadata(build)))
        self.changed()

    @staticmethod
    def _metadata(build: Any) -> cb.BuildOperationMetadata:
        return cb.BuildOperationMetadata(build=_wrap(build))

    def _log(self, build: Any, text: str, severity: str = "DEFAULT") -> None:
        entry = log_types.LogEntry(
            log_name=f"projects/{build.project_id}/logs/cloudbuild",
            resource={
                "type": "build",
                "labels": {
                    "build_id": build.id,
                    "project_id": build.project_id,
                    "build_trigger_id": build.build_trigger_id,
                },
            },
            text_payload=text,
            severity=severity,
        )
        self.cloud.service("logging").write_entries([entry])

    # google.longrunning.Operations, shared with Run -------------------------------------------
    def _delegate(self, method: str, request: Any, context: Any) -> Any:
        return getattr(self.cloud.service("run").operations, method)(request, context)

    def get_operation(self, request: operations_pb2.GetOperationRequest, context: Any) -> Any:
        if not request.name.startswith(_OP_PREFIX):
            return self._delegate("get_operation", request, context)
        with self.lock:
            return _copy_op(self._op(request.name))

    def wait_operation(self, request: operations_pb2.WaitOperationRequest, context: Any) -> Any:
        if not request.name.startswith(_OP_PREFIX):
            return self._delegate("wait_operation", request, context)
        get = lambda: self._op(request.name)  # noqa: E731
        return _copy_op(rpc.wait_operation(request, context, self._cond, get, self._stopping))

    def list_operations(self, request: operations_pb2.ListOperationsRequest, context: Any) -> Any:
        if not request.name.startswith("operations/build"):
            return self._delegate("list_operations", request, context)
        with self.lock:
            ops = [
                _copy_op(op) for n, op in sorted(self._ops.items()) if n.startswith(request.name)
            ]
        chunk, token = rpc.page(ops, request.page_size, request.page_token)
        return operations_pb2.ListOperationsResponse(operations=chunk, next_page_token=token)

    def delete_operation(self, request: operations_pb2.DeleteOperationRequest, context: Any) -> Any:
        if not request.name.startswith(_OP_PREFIX):
            return self._delegate("delete_operation", request, context)
        with self.lock:
            self._op(request.name)
            del self._ops[request.name]
            self.changed()
        return empty_pb2.Empty()

    def _op(self, name: str) -> operations_pb2.Operation:
        op = self._ops.get(name)
        if op is None:
            raise not_found(f"Operation {name} not found.")
        return op

    # gRPC, lifecycle, persistence -------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        o = operations_pb2
        return [
            rpc.service(
                "google.devtools.cloudbuild.v1.CloudBuild",
                {
                    "CreateBuild": Method(self.create_build, cb.CreateBuildRequest, o.Operation),
                    "GetBuild": Method(self.get_build, cb.GetBuildRequest, cb.Build),
                    "ListBuilds": Method(
                        self.list_builds, cb.ListBuildsRequest, cb.ListBuildsResponse
                    ),
                    "CancelBuild": Method(self.cancel_build, cb.CancelBuildRequest, cb.Build),
                },
            ),
            rpc.operations_service(self),
        ]

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


def _wrap(build: Any) -> cb.Build:
    out = BuildPb()
    out.CopyFrom(build)
    return cb.Build.wrap(out)


def _copy_op(op: operations_pb2.Operation) -> operations_pb2.Operation:
    out = operations_pb2.Operation()
    out.CopyFrom(op)
    return out


def _split_tag(image: str) -> tuple[str, str]:
    """``host/path/name:tag`` → (``host/path/name``, ``tag``); no tag means ``latest``."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = image.rpartition(":")
        return path, tag
    return image, "latest"
