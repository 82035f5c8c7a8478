"""Cloud Build: stage a source tarball and build an image from it, streaming the log.

The flow is ``gcloud builds submit``'s: the tarball goes to the project's staging bucket
``gs://PROJECT_cloudbuild/source/…`` (created when missing, as gcloud creates it), a build with
one docker step and the images to push is created, and its log lines are read from Cloud
Logging (``resource.type="build"``) while GetBuild is polled until the build ends.

The build runs as the service account it is given (``[build] service_account``), not the
project's default: since 2024 that default is, for projects new to Cloud Build, the Compute
Engine default account, which may lack the rights to push and to log
(https://cloud.google.com/build/docs/cloud-build-service-account-updates). A build with its own
account must send its log somewhere other than the default bucket; it goes to Cloud Logging
only (``CLOUD_LOGGING_ONLY``), which is where govctl reads it
(https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from govctl.errors import CloudError, GovctlError
from govctl.gcp import clients
from govctl.gcp.errors import translate

if TYPE_CHECKING:
    from google.cloud.devtools import cloudbuild_v1

BUILD_FIX = "grant yourself roles/cloudbuild.builds.editor on the project"
STORAGE_FIX = "grant yourself roles/storage.admin on the project"
# Cloud Logging allows about 60 reads a minute per project: one read per poll stays well under.
POLL_SECONDS = 2.0
EMULATOR_POLL_SECONDS = 0.1
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class StagedSource:
    bucket: str
    object: str
    generation: int

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.object}#{self.generation}"


@dataclass(frozen=True)
class BuildResult:
    id: str
    status: str  # SUCCESS
    images: dict[str, str]  # image as requested (with tag) -> sha256 digest
    log_url: str
    log_lines: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """The digest of the image (every requested tag names the same one)."""
        return next(iter(self.images.values()))


class BuildFailed(GovctlError):
    """A build that ended without success; ``log_tail`` holds its last log lines."""

    def __init__(self, message: str, *, fix: str | None, log_tail: list[str]) -> None:
        self.log_tail = log_tail
        shown = "".join(f"\n  | {line}" for line in log_tail)
        super().__init__(message + shown, fix=fix)


def staging_bucket(project: str) -> str:
    return f"{project}_cloudbuild"


def upload_source(project: str, data: bytes, sha256: str) -> StagedSource:
    """Put ``data`` at ``gs://PROJECT_cloudbuild/source/SHA256.tgz``, creating the bucket when
    missing. The name is the content's hash, so re-uploading the same source is skipped."""
    from google.api_core import exceptions as gexc

    client = clients.storage_client(project)
    name = staging_bucket(project)
    with translate(f"staging the build source in gs://{name}", denied=STORAGE_FIX):
        bucket = client.bucket(name)
        try:
            client.get_bucket(name)
        except gexc.NotFound:
            # gcloud builds submit creates it in the US multi-region; so do we. A Conflict means
            # it was created meanwhile (or is someone else's: the upload below then says so).
            with contextlib.suppress(gexc.Conflict):
                bucket = client.create_bucket(name, location="US")
        blob = bucket.blob(f"source/{sha256}.tgz")
        try:
            blob.upload_from_string(data, content_type="application/gzip", if_generation_match=0)
        except gexc.PreconditionFailed:
            blob.reload()
    return StagedSource(name, blob.name, int(blob.generation or 0))


def _request(
    project: str,
    source: StagedSource,
    image: str,
    tags: list[str],
    dockerfile: str,
    timeout_seconds: int,
    account: str | None,
) -> cloudbuild_v1.Build:
    """The Build: one docker build step, tagged with every tag, pushed by Cloud Build, run as
    ``account`` (a service account email in the build's project) with its log in Cloud
    Logging only."""
    from google.cloud.devtools import cloudbuild_v1 as cb

    tagged = [f"{image}:{tag}" for tag in tags]
    args = ["build"]
    for name in tagged:
        args += ["-t", name]
    args += ["-f", dockerfile, "."]
    build = cb.Build(
        source=cb.Source(
            storage_source=cb.StorageSource(
                bucket=source.bucket, object_=source.object, generation=source.generation
            )
        ),
        steps=[cb.BuildStep(name="gcr.io/cloud-builders/docker", args=args)],
        images=tagged,
        timeout={"seconds": timeout_seconds},
        tags=["govctl"],
    )
    if account is not None:
        build.service_account = account_name(project, account)
        build.options = cb.BuildOptions(logging=cb.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY)
    return build


def account_name(project: str, email: str) -> str:
    """``Build.service_account``: ``projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}``."""
    return f"projects/{project}/serviceAccounts/{email}"


def _ended(status: int) -> bool:
    from google.cloud.devtools import cloudbuild_v1 as cb

    s = cb.Build.Status
    return status in {s.SUCCESS, s.FAILURE, s.INTERNAL_ERROR, s.TIMEOUT, s.CANCELLED, s.EXPIRED}


class _Log:
    """The build's log lines as they come: kept, and each passed on once."""

    def __init__(self, project: str, build_id: str, on_log: Callable[[str], None] | None):
        self.reader = _LogReader(project, build_id)
        self.on_log = on_log
        self.lines: list[str] = []

    def note(self, line: str) -> None:
        """A line of govctl's about the build, passed on with the log."""
        self.lines.append(line)
        if self.on_log is not None:
            self.on_log(line)

    def drain(self) -> int:
        """Read what is new; how many lines that was."""
        new = self.reader.new_lines()
        self.lines += new
        if self.on_log is not None:
            for line in new:
                self.on_log(line)
        return len(new)


def submit_build(
    project: str,
    source: StagedSource,
    *,
    image: str,
    tags: list[str],
    dockerfile: str = "ingestion/Dockerfile",
    on_log: Callable[[str], None] | None = None,
    poll_seconds: float | None = None,
    timeout_seconds: int = 1200,
    account: str | None = None,
) -> BuildResult:
    """Build ``image`` (``LOCATION-docker.pkg.dev/P/R/IMAGE``) with every tag in ``tags`` from
    ``source`` as the service account ``account`` (None: the project's default); stream the
    log to ``on_log``; return the digest. BuildFailed on failure."""
    from google.cloud.devtools import cloudbuild_v1 as cb

    client = clients.cloud_build()
    request = _request(project, source, image, tags, dockerfile, timeout_seconds, account)
    build_id = _start(client, project, request, account)
    if poll_seconds is None:
        poll_seconds = EMULATOR_POLL_SECONDS if clients.emulator_host() else POLL_SECONDS
    log = _Log(project, build_id, on_log)
    while True:
        with translate(f"reading Cloud Build {build_id}", denied=BUILD_FIX):
            current = client.get_build(project_id=project, id=build_id)
        log.drain()
        if _ended(current.status):
            break
        time.sleep(poll_seconds)
    # The last lines can reach Cloud Logging a little after the build ends: read until a
    # read after a pause brings nothing new (at most three more reads).
    for _ in range(3):
        time.sleep(poll_seconds)
        if not log.drain():
            break
    status = cb.Build.Status(current.status).name
    # Said by Cloud Build beside the log, e.g. that the account may not write it.
    for warning in current.warnings:
        log.note(f"WARNING: {warning.text}")
    if current.status != cb.Build.Status.SUCCESS:
        reason = current.status_detail or current.failure_info.detail or status
        raise BuildFailed(
            f"Cloud Build {build_id} ended {status}: {reason}",
            fix=_failure_fix(current, account),
            log_tail=log.lines[-LOG_TAIL_LINES:],
        )
    images = {i.name: i.digest for i in current.results.images}
    if not images:
        raise CloudError(f"Cloud Build {build_id} succeeded but reports no image pushed")
    return BuildResult(build_id, status, images, current.log_url, log.lines)


def _start(
    client: cloudbuild_v1.CloudBuildClient,
    project: str,
    request: cloudbuild_v1.Build,
    account: str | None,
) -> str:
    """Create the build; its id."""
    what = f"starting a Cloud Build in project {project}" + (f" as {account}" if account else "")
    denied = BUILD_FIX + (f", and iam.serviceAccounts.actAs on {account}" if account else "")
    try:
        with translate(what, denied=denied):
            op = client.create_build(project_id=project, build=request)
            return str(op.metadata.build.id)
    except CloudError as err:
        if err.reason == "INVALID_ARGUMENT" and account:  # e.g. the account does not exist
            raise CloudError(str(err), reason=err.reason,
                             fix="`govctl setup` makes the build's service account; "
                             "`govctl doctor` checks it") from None  # fmt: skip
        raise


def _failure_fix(build: cloudbuild_v1.Build, account: str | None) -> str:
    """What to do about a failed build, read from its ``failure_info.type``."""
    from google.cloud.devtools import cloudbuild_v1 as cb

    kind = cb.Build.FailureInfo.FailureType
    see = f"see the whole log: {build.log_url}"
    who = account or "the build's service account"
    if build.failure_info.type_ == kind.PUSH_NOT_AUTHORIZED:
        return (
            f"{who} may not push to the image's repository: it needs "
            f"roles/artifactregistry.writer there; `govctl setup` grants it and `govctl "
            f"doctor` checks it ({see})"
        )
    if build.failure_info.type_ == kind.FETCH_SOURCE_FAILED:
        return f"{who} needs roles/storage.objectViewer on the source bucket ({see})"
    return see


class _LogReader:
    """The build's log lines in Cloud Logging, each returned once."""

    def __init__(self, project: str, build_id: str) -> None:
        self.project = project
        self.filter = (
            f'logName="projects/{project}/logs/cloudbuild" AND resource.type="build" '
            f'AND resource.labels.build_id="{build_id}"'
        )
        self.seen: set[str] = set()
        self.client = clients.logging()

    def new_lines(self) -> list[str]:
        with translate(
            "reading the build's log",
            denied="grant yourself roles/logging.viewer on the project",
        ):
            entries = self.client.list_log_entries(
                request={
                    "resource_names": [f"projects/{self.project}"],
                    "filter": self.filter,
                    "order_by": "timestamp asc",
                    "page_size": 1000,
                }
            )
            out = []
            for entry in entries:
                if entry.insert_id in self.seen:
                    continue
                self.seen.add(entry.insert_id)
                out.append(entry.text_payload)
        return out
