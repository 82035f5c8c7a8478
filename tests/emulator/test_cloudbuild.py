"""Conformance of the emulated Cloud Build v1, driven through the official clients."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

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


def build_spec(obj: str = "source/abc.tgz", tags: tuple[str, ...] = ("abc", "latest")) -> cb.Build:
    images = [f"{IMAGE}:{t}" for t in tags]
    args = ["build", *[a for i in images for a in ("-t", i)], "-f", "ingestion/Dockerfile", "."]
    return cb.Build(
        source=cb.Source(storage_source=cb.StorageSource(bucket=BUCKET, object_=obj)),
        steps=[cb.BuildStep(name="gcr.io/cloud-builders/docker", args=args)],
        images=images,
    )


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
