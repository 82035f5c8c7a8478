"""A build at work, on its own thread: QUEUED → WORKING → SUCCESS or FAILURE.

By default the steps are not run (the emulator runs tasks as local processes, not containers):
the image digest is ``sha256`` of the source tarball, so the same source gives the same digest.
With ``--build-with`` the docker build steps run with a local engine (:mod:`.engine`). Either
way every image of ``build.images`` is recorded in Artifact Registry with its tag, and the
build's log lines go to Cloud Logging as Cloud Build writes them (``resource.type="build"``,
log id ``cloudbuild``).
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from google.cloud.devtools import cloudbuild_v1 as cb
from google.cloud.logging_v2 import types as log_types

from govctl.emulator.cloudbuild import engine, identity
from govctl.emulator.cloudbuild.resources import (
    TERMINAL,
    CloudBuildResources,
    Failed,
    FailureType,
    Status,
)
from govctl.emulator.cloudbuild.source import fetch as fetch_source
from govctl.emulator.rpc import RpcError

WARNING = cb.Build.Warning.Priority.WARNING
UPLOAD = "artifactregistry.repositories.uploadArtifacts"
# Pauses between a build's phases, so a client sees it QUEUED and WORKING as in production.
PHASE_SECONDS = 0.05


class Builder(CloudBuildResources):
    def _run(self, build_id: str) -> None:
        try:
            self._steps(build_id)
        except Exception as err:  # a bug here must not leave the build WORKING forever
            with self._cond:
                build = self._builds.require(build_id)
                if build.status not in TERMINAL:
                    self._finish(build, Status.INTERNAL_ERROR, f"emulator error: {err!r}")
            raise
        finally:
            self._unlogged.discard(build_id)

    def _identity(self, build: Any) -> str:
        """The member the build runs as; whether its lines reach Cloud Logging is settled here
        (an account that may not write logs gets the build a warning, as in production)."""
        with self._cond:
            who = identity.member(self.cloud, build)
            to_logging = identity.writes_cloud_logging(build)
            project = build.project_id
        allowed = identity.may_log(self.cloud, project, who)
        if to_logging and allowed:
            return who
        with self._cond:
            self._unlogged.add(build.id)
            if to_logging:
                build.warnings.add(text=identity.NO_LOG_WARNING, priority=WARNING)
                self._sync(build)
        return who

    def _steps(self, build_id: str) -> None:
        with self._cond:
            build = self._builds.require(build_id)
        who = self._identity(build)
        with self._cond:
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
            data = fetch_source(self.cloud.storage_url, src.bucket, src.object_, src.generation)
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
            built = self._record(build, digests, len(data), who)
        except Failed as failed:
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
                raise Failed(
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
                        raise Failed(
                            FailureType.USER_BUILD_STEP,
                            f'build step {i} "{step.name}" failed: step exited with non-zero '
                            f"status: {code}",
                        )
                self._log(build, f"Finished Step #{i}")
        digests = {}
        for image in images:
            digest = engine_.digest(image)
            if digest is None:
                raise Failed(
                    FailureType.PUSH_IMAGE_NOT_FOUND,
                    f"failed to find one or more images after execution of build steps: {image}",
                )
            digests[image] = digest
        return digests

    def _record(self, build: Any, digests: dict[str, str], size: int, who: str) -> list[Any]:
        registry = self.cloud.service("artifactregistry")
        built = []
        for image, digest in digests.items():
            path, tag = split_tag(image)
            self._log(build, f"Pushing {image}")
            self._check_push(build, registry, image, path, who)
            try:
                registry.record_image(path, digest, [tag], size)
            except RpcError as err:
                raise Failed(
                    FailureType.PUSH_FAILED, f"failed to push {image}: {err.message}"
                ) from None
            how = "recorded, not built" if self._engine is None else "built locally, not pushed"
            self._log(build, f"{tag}: digest: {digest} ({how})")
            built.append(cb.BuiltImage.pb(cb.BuiltImage(name=image, digest=digest)))
        return built

    def _check_push(self, build: Any, registry: Any, image: str, path: str, who: str) -> None:
        """Fail the build, as Cloud Build's push fails, when ``who`` may not push ``path``.

        The lines are those of a denied push in production (google/ax#140 for the denial,
        flutter/flutter#188342 for Cloud Build's retries and the final error)."""
        repository = registry.push_denied(path, who)
        if repository is None:
            return
        self._log(build, f"The push refers to repository [{path}]")
        self._log(
            build,
            f'denied: Permission "{UPLOAD}" denied on resource "{repository}" '
            "(or it may not exist)",
        )
        self._log(build, "ERROR: failed to push because we ran out of retries.", "ERROR")
        raise Failed(
            FailureType.PUSH_NOT_AUTHORIZED,
            f'error pushing image "{image}": retry budget exhausted (10 attempts): step exited '
            "with non-zero status: 1",
        )

    def _log(self, build: Any, text: str, severity: str = "DEFAULT") -> None:
        if build.id in self._unlogged:
            return
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


def split_tag(image: str) -> tuple[str, str]:
    """``host/path/name:tag`` → (``host/path/name``, ``tag``); no tag means ``latest``."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = image.rpartition(":")
        return path, tag
    return image, "latest"
