"""Conformance of the emulated Cloud Build v1, driven through the official clients."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar
from google.cloud.devtools import cloudbuild_v1 as cb
from google.longrunning import operations_pb2

from govctl.cli.main import main
from govctl.emulator.cloudbuild.builder import Builder
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL, job_spec

PROJECT = "demo-project"
REGION = "europe-west2"
REPO = f"projects/{PROJECT}/locations/{REGION}/repositories/govreposcrape"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
BUCKET = f"{PROJECT}_cloudbuild"
SOURCE = b"not really a tarball, but bytes all the same"
DIGEST = "sha256:" + hashlib.sha256(SOURCE).hexdigest()
BUILDER = f"builder@{PROJECT}.iam.gserviceaccount.com"
BUILDER_NAME = f"projects/{PROJECT}/serviceAccounts/{BUILDER}"
WRITER = "roles/artifactregistry.writer"
LOG_WRITER = "roles/logging.logWriter"


def grant(client: Any, resource: str, role: str, member: str) -> None:
    policy = client.get_iam_policy(request={"resource": resource})
    policy.bindings.add(role=role, members=[member])
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def revoke(client: Any, resource: str, role: str, member: str) -> None:
    policy = client.get_iam_policy(request={"resource": resource})
    for binding in policy.bindings:
        if binding.role == role and member in binding.members:
            binding.members.remove(member)
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def make_builder(*, logs: bool = True, push: bool = True) -> None:
    """The build service account govctl setup makes: it may write logs and push to REPO."""
    clients.iam().create_service_account(
        request={"name": f"projects/{PROJECT}", "account_id": "builder"}
    )
    if logs:
        grant(clients.projects(), f"projects/{PROJECT}", LOG_WRITER, f"serviceAccount:{BUILDER}")
    if push:
        grant(clients.artifact_registry(), REPO, WRITER, f"serviceAccount:{BUILDER}")


def stage(obj: str = "source/abc.tgz", data: bytes = SOURCE) -> None:
    storage = clients.storage_client(PROJECT)
    bucket = storage.bucket(BUCKET)
    if not bucket.exists():
        bucket = storage.create_bucket(BUCKET)
    bucket.blob(obj).upload_from_string(data)


def make_repo() -> None:
    clients.artifact_registry().create_repository(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        repository_id="govreposcrape",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=5)


def build_spec(
    obj: str = "source/abc.tgz",
    tags: tuple[str, ...] = ("abc", "latest"),
    account: str | None = BUILDER_NAME,
) -> cb.Build:
    """A build as govctl makes it: run as ``account`` (None: the project's default) with its
    log in Cloud Logging only, the option a user-specified account requires."""
    images = [f"{IMAGE}:{t}" for t in tags]
    args = ["build", *[a for i in images for a in ("-t", i)], "-f", "ingestion/Dockerfile", "."]
    build = cb.Build(
        source=cb.Source(storage_source=cb.StorageSource(bucket=BUCKET, object_=obj)),
        steps=[cb.BuildStep(name="gcr.io/cloud-builders/docker", args=args)],
        images=images,
    )
    if account is not None:
        build.service_account = account
        build.options.logging = cb.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY
    return build


def wait_build(client: cb.CloudBuildClient, build_id: str, timeout: float = 10) -> cb.Build:
    deadline = time.monotonic() + timeout
    while True:
        build = client.get_build(project_id=PROJECT, id=build_id)
        if build.status not in (cb.Build.Status.QUEUED, cb.Build.Status.WORKING):
            return build
        assert time.monotonic() < deadline, build
        time.sleep(0.02)


def build_log(build_id: str) -> list[str]:
    entries = clients.logging().list_log_entries(
        request={
            "resource_names": [f"projects/{PROJECT}"],
            "filter": f'resource.type="build" AND resource.labels.build_id="{build_id}"',
        }
    )
    for e in entries:
        assert e.log_name == f"projects/{PROJECT}/logs/cloudbuild"
    return [e.text_payload for e in entries]


def test_build_records_the_image_with_a_digest_of_its_source(emulator: Emulator) -> None:
    stage()
    make_repo()
    make_builder()
    client = clients.cloud_build()
    op = client.create_build(project_id=PROJECT, build=build_spec())
    meta = op.metadata.build
    assert meta.status == cb.Build.Status.QUEUED
    assert meta.name == f"projects/{PROJECT}/locations/global/builds/{meta.id}"
    # The operation is polled through google.longrunning.Operations, as the client does.
    build = op.result(timeout=10, polling=FAST_POLL)
    assert build.status == cb.Build.Status.SUCCESS
    assert {(i.name, i.digest) for i in build.results.images} == {
        (f"{IMAGE}:abc", DIGEST),
        (f"{IMAGE}:latest", DIGEST),
    }
    assert build.start_time <= build.finish_time
    images = list(clients.artifact_registry().list_docker_images(parent=REPO))
    assert [(i.uri, sorted(i.tags)) for i in images] == [(f"{IMAGE}@{DIGEST}", ["abc", "latest"])]
    log = build_log(meta.id)
    assert log[0] == f'starting build "{meta.id}"'
    assert f"Fetching storage object: gs://{BUCKET}/source/abc.tgz" in log
    assert any("recorded, not built" in line for line in log)
    assert log[-1] == "DONE"


def test_same_source_same_digest_other_source_other_digest(emulator: Emulator) -> None:
    stage()
    stage("source/other.tgz", b"other bytes")
    make_repo()
    make_builder()
    client = clients.cloud_build()
    first = wait_build(
        client, client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    )
    again = wait_build(
        client, client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    )
    other = wait_build(
        client,
        client.create_build(
            project_id=PROJECT, build=build_spec("source/other.tgz", ("def",))
        ).metadata.build.id,
    )
    assert first.results.images[0].digest == again.results.images[0].digest == DIGEST
    assert other.results.images[0].digest == "sha256:" + hashlib.sha256(b"other bytes").hexdigest()
    listed = [b.id for b in client.list_builds(project_id=PROJECT)]
    assert listed == [other.id, again.id, first.id]  # newest first


def test_missing_source_fails_the_build_with_the_reason_in_its_log(emulator: Emulator) -> None:
    make_repo()
    make_builder()
    stage()
    client = clients.cloud_build()
    op = client.create_build(project_id=PROJECT, build=build_spec("source/missing.tgz"))
    with pytest.raises(exceptions.GoogleAPICallError, match="Build failed"):
        op.result(timeout=10, polling=FAST_POLL)
    build = client.get_build(project_id=PROJECT, id=op.metadata.build.id)
    assert build.status == cb.Build.Status.FAILURE
    assert build.failure_info.type_ == cb.Build.FailureInfo.FailureType.FETCH_SOURCE_FAILED
    assert "source/missing.tgz does not exist" in build.status_detail
    assert any(
        line.startswith("ERROR:") and "does not exist" in line for line in build_log(build.id)
    )
    assert list(clients.artifact_registry().list_docker_images(parent=REPO)) == []


def test_missing_repository_fails_the_push(emulator: Emulator) -> None:
    stage()
    make_builder(push=False)
    client = clients.cloud_build()
    build_id = client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    build = wait_build(client, build_id)
    assert build.status == cb.Build.Status.FAILURE
    assert build.failure_info.type_ == cb.Build.FailureInfo.FailureType.PUSH_FAILED
    assert f"Repository {REPO} not found" in build.status_detail
    assert any("not found" in line for line in build_log(build_id) if line.startswith("ERROR"))


def test_invalid_builds_are_refused(emulator: Emulator) -> None:
    client = clients.cloud_build()
    no_steps = build_spec()
    del no_steps.steps[:]
    with pytest.raises(exceptions.InvalidArgument, match="at least one step"):
        client.create_build(project_id=PROJECT, build=no_steps)
    with pytest.raises(exceptions.InvalidArgument, match="storage_source"):
        client.create_build(project_id=PROJECT, build=cb.Build(steps=[cb.BuildStep(name="x")]))
    with pytest.raises(exceptions.NotFound):
        client.get_build(project_id=PROJECT, id="nope")


def test_cancel_and_run_operations_still_served(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage()
    make_repo()
    make_builder()
    # The build waits, QUEUED, until it has been cancelled: the cancel always wins the race.
    cancelled_first = threading.Event()
    pause = Builder._pause

    def held(self: Builder) -> bool:
        assert cancelled_first.wait(10)
        return pause(self)

    monkeypatch.setattr(Builder, "_pause", held)
    client = clients.cloud_build()
    build_id = client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    (worker,) = [t for t in threading.enumerate() if t.name == f"build-{build_id[:8]}"]
    cancelled = client.cancel_build(project_id=PROJECT, id=build_id)
    assert cancelled.status == cb.Build.Status.CANCELLED
    assert "finish_time" in cancelled
    # Released, the build's own thread goes on and ends: the build stays cancelled.
    cancelled_first.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    after = client.get_build(project_id=PROJECT, id=build_id)
    assert after.status == cb.Build.Status.CANCELLED
    assert after.finish_time == cancelled.finish_time
    # Cloud Run's operations share the gRPC service name: they still answer.
    jobs = clients.jobs()
    op = jobs.create_job(
        parent=f"projects/{PROJECT}/locations/{REGION}", job_id="j", job=job_spec()
    )
    got = jobs.get_operation(operations_pb2.GetOperationRequest(name=op.operation.name))
    assert got.done


@pytest.mark.parametrize("value", ["nerdctl", "", "kaniko build"])
def test_bad_build_with_exits_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "start", "--state-dir", str(tmp_path), "--build-with", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"--build-with {value!r}: expected podman or docker" in err
    assert not (tmp_path / "emulator.json").exists()


def test_build_operations_are_listed_under_their_project(emulator: Emulator) -> None:
    stage()
    make_repo()
    make_builder()
    op = clients.cloud_build().create_build(project_id=PROJECT, build=build_spec())
    # google.longrunning.Operations is one service for every API: any client's mixin reaches it.
    ops = clients.jobs()
    listed = ops.list_operations(
        request=operations_pb2.ListOperationsRequest(name=f"operations/build/{PROJECT}")
    )
    assert [o.name for o in listed.operations] == [op.operation.name]
    with pytest.raises(exceptions.InvalidArgument):
        ops.list_operations(
            request=operations_pb2.ListOperationsRequest(name="operations/build", filter="done")
        )


# --- who a build runs as ---------------------------------------------------------------------


def test_a_build_runs_as_its_account_and_fails_to_push_without_the_writer_role(
    emulator: Emulator,
) -> None:
    stage()
    make_repo()
    make_builder(push=False)
    client = clients.cloud_build()
    build = wait_build(
        client, client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    )
    assert build.service_account == BUILDER_NAME
    assert build.status == cb.Build.Status.FAILURE
    assert build.failure_info.type_ == cb.Build.FailureInfo.FailureType.PUSH_NOT_AUTHORIZED
    assert build.status_detail.startswith(f'error pushing image "{IMAGE}:abc"')
    log = build_log(build.id)
    assert (
        'denied: Permission "artifactregistry.repositories.uploadArtifacts" denied on resource '
        f'"{REPO}" (or it may not exist)'
    ) in log
    assert list(clients.artifact_registry().list_docker_images(parent=REPO)) == []
    # With the role on the repository the same build pushes; without it again, it fails again.
    grant(clients.artifact_registry(), REPO, WRITER, f"serviceAccount:{BUILDER}")
    build = wait_build(
        client, client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    )
    assert build.status == cb.Build.Status.SUCCESS
    revoke(clients.artifact_registry(), REPO, WRITER, f"serviceAccount:{BUILDER}")
    build = wait_build(
        client, client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    )
    assert build.status == cb.Build.Status.FAILURE


def test_an_account_that_may_not_write_logs_leaves_no_log_and_a_warning(
    emulator: Emulator,
) -> None:
    stage()
    make_repo()
    make_builder(logs=False)
    client = clients.cloud_build()
    build = wait_build(
        client, client.create_build(project_id=PROJECT, build=build_spec()).metadata.build.id
    )
    assert build.status == cb.Build.Status.SUCCESS
    assert [(w.text, w.priority) for w in build.warnings] == [
        (
            "The service account running this build does not have permission to write logs. To "
            "fix this, grant the Logs Writer (roles/logging.logWriter) role to the service "
            "account.",
            cb.Build.Warning.Priority.WARNING,
        )
    ]
    assert build_log(build.id) == []


def test_without_an_account_a_new_project_builds_as_the_compute_default_and_cannot_push(
    emulator: Emulator,
) -> None:
    stage()
    make_repo()
    client = clients.cloud_build()
    number = clients.projects().get_project(name=f"projects/{PROJECT}").name.split("/")[1]
    compute = f"{number}-compute@developer.gserviceaccount.com"
    default = client.get_default_service_account(
        name=f"projects/{PROJECT}/locations/global/defaultServiceAccount"
    )
    assert default.service_account_email == f"projects/{PROJECT}/serviceAccounts/{compute}"
    build = wait_build(
        client,
        client.create_build(project_id=PROJECT, build=build_spec(account=None)).metadata.build.id,
    )
    assert build.status == cb.Build.Status.FAILURE
    assert build.failure_info.type_ == cb.Build.FailureInfo.FailureType.PUSH_NOT_AUTHORIZED
    assert build.warnings[0].text.startswith("The service account running this build")
    assert build_log(build.id) == []
    # Granted what a build needs, the default account builds.
    grant(clients.projects(), f"projects/{PROJECT}", LOG_WRITER, f"serviceAccount:{compute}")
    grant(clients.artifact_registry(), REPO, WRITER, f"serviceAccount:{compute}")
    build = wait_build(
        client,
        client.create_build(project_id=PROJECT, build=build_spec(account=None)).metadata.build.id,
    )
    assert build.status == cb.Build.Status.SUCCESS
    assert build_log(build.id)[-1] == "DONE"


def test_a_user_specified_account_needs_a_logging_choice_and_must_exist(emulator: Emulator) -> None:
    client = clients.cloud_build()
    make_builder(push=False)
    no_choice = build_spec()
    no_choice.options.logging = cb.BuildOptions.LoggingMode.LOGGING_UNSPECIFIED
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.create_build(project_id=PROJECT, build=no_choice)
    assert refused.value.message == (
        "if 'build.service_account' is specified, the build must either (a) specify "
        "'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
        "build.options.default_logs_bucket_behavior option, or (c) use either CLOUD_LOGGING_ONLY "
        "/ NONE logging options"
    )
    for accepted in (
        {"logs_bucket": "gs://my-logs"},
        {"options": {"logging": cb.BuildOptions.LoggingMode.NONE}},
        {"options": {"default_logs_bucket_behavior": "REGIONAL_USER_OWNED_BUCKET"}},
    ):
        build = build_spec()
        build.options.logging = cb.BuildOptions.LoggingMode.LOGGING_UNSPECIFIED
        for key, value in accepted.items():
            setattr(build, key, value)
        assert client.create_build(project_id=PROJECT, build=build).metadata.build.id
    for bad in (f"projects/{PROJECT}/serviceAccounts/nobody@{PROJECT}.iam.gserviceaccount.com",
                BUILDER):  # fmt: skip
        with pytest.raises(exceptions.InvalidArgument):
            client.create_build(project_id=PROJECT, build=build_spec(account=bad))
