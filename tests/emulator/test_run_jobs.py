"""Cloud Run Admin v2 Jobs, IAM and operations, through the official client only.

One in-memory emulator serves the whole module (starting one per test costs ~0.3 s);
every test works in a location of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator import run_support
from tests.emulator.run_support import FAST_POLL, job_spec
from tests.support.cloud import service_account

_locations = itertools.count()


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(run_unmapped_images=True) as emu, pytest.MonkeyPatch.context() as mp:
        for key, value in emu.env().items():
            mp.setenv(key, value)
        yield emu


@pytest.fixture
def parent(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"projects/demo-project/locations/test-{next(_locations)}"
    monkeypatch.setattr(run_support, "PARENT", value)
    return value


@pytest.fixture
def jobs(shared_emulator: Emulator, parent: str) -> run_v2.JobsClient:
    return clients.jobs()


def create(jobs: run_v2.JobsClient, job_id: str, job: run_v2.Job | None = None) -> run_v2.Job:
    return run_support.create(jobs, job_id, job)


def test_create_returns_a_finished_operation_with_the_job(
    jobs: run_v2.JobsClient, parent: str
) -> None:
    op = jobs.create_job(parent=parent, job_id="ingest", job=job_spec())
    assert op.done()
    job = op.result(polling=FAST_POLL)
    assert isinstance(op.metadata, run_v2.Job)
    assert job.name == f"{parent}/jobs/ingest"
    assert job.uid and job.etag and job.creator and job.last_modifier
    assert job.generation == 1 and job.observed_generation == 1
    assert job.create_time == job.update_time
    assert job.terminal_condition.type_ == "Ready"
    assert job.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert not job.reconciling and job.execution_count == 0
    # Defaults the real service fills in.
    assert job.template.task_count == 1
    assert job.template.template.max_retries == 0  # set explicitly by job_spec
    assert job.template.template.timeout == timedelta(minutes=10)
    limits = job.template.template.containers[0].resources.limits
    assert limits["cpu"] == "1000m" and limits["memory"] == "512Mi"
    assert jobs.get_job(name=job.name) == job


def test_max_retries_defaults_to_three(jobs: run_v2.JobsClient, parent: str) -> None:
    spec = job_spec()
    spec.template.template = run_v2.TaskTemplate(containers=spec.template.template.containers)
    assert create(jobs, "defaults", spec).template.template.max_retries == 3


def test_create_twice_is_already_exists(jobs: run_v2.JobsClient, parent: str) -> None:
    create(jobs, "ingest")
    with pytest.raises(exceptions.AlreadyExists):
        jobs.create_job(parent=parent, job_id="ingest", job=job_spec())


def test_validate_only_creates_nothing(jobs: run_v2.JobsClient, parent: str) -> None:
    request = run_v2.CreateJobRequest(
        parent=parent, job_id="dry", job=job_spec(), validate_only=True
    )
    assert jobs.create_job(request=request).result(polling=FAST_POLL).name.endswith("/jobs/dry")
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=f"{parent}/jobs/dry")


def test_get_missing_job_is_not_found(jobs: run_v2.JobsClient, parent: str) -> None:
    with pytest.raises(exceptions.NotFound, match="does not exist"):
        jobs.get_job(name=f"{parent}/jobs/nope")


@pytest.mark.parametrize(
    "job_id",
    ["Ingest", "1ingest", "ingest-", "in_gest", "a" * 64, ""],
)
def test_invalid_job_ids(jobs: run_v2.JobsClient, parent: str, job_id: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        jobs.create_job(parent=parent, job_id=job_id, job=job_spec())


def test_longest_valid_job_id(jobs: run_v2.JobsClient, parent: str) -> None:
    assert create(jobs, "a" * 63).name.endswith("a" * 63)


@pytest.mark.parametrize(
    "bad_parent", ["projects/p", "projects/p/locations/", "locations/x", "projects/p/regions/r"]
)
def test_invalid_parents(jobs: run_v2.JobsClient, bad_parent: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        jobs.list_jobs(parent=bad_parent)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"cpu": "3"}, "cpu"),
        ({"cpu": "0.5"}, "cpu"),
        ({"cpu": "1", "memory": "8Gi"}, "memory"),
        ({"cpu": "4", "memory": "1Gi"}, "memory"),
        ({"cpu": "8", "memory": "64Gi"}, "memory"),
        ({"memory": "127Mi"}, "memory"),
        ({"memory": "lots"}, "memory"),
        ({"max_retries": 11}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": timedelta(hours=168, seconds=1)}, "timeout"),
        ({"task_count": 2, "parallelism": 3}, "parallelism"),
        ({"task_count": 10_001}, "task_count"),
        ({"env": {"CLOUD_RUN_TASK_INDEX": "7"}}, "reserved"),
    ],
)
def test_invalid_specs_are_rejected(
    jobs: run_v2.JobsClient, parent: str, changes: dict[str, object], match: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=match):
        jobs.create_job(parent=parent, job_id="bad", job=job_spec(**changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        ("1", "128Mi"),
        ("1", "256Mi"),
        ("2", "128Mi"),
        ("2", "8Gi"),
        ("4", "2Gi"),
        ("6", "24Gi"),
        ("8", "32Gi"),
    ],
)
def test_allowed_cpu_memory_combinations(
    jobs: run_v2.JobsClient, parent: str, cpu: str, memory: str
) -> None:
    job = create(jobs, f"cpu{cpu}", job_spec(cpu=cpu, memory=memory))
    assert job.template.template.containers[0].resources.limits["memory"] == memory


def test_missing_image_and_reserved_labels(jobs: run_v2.JobsClient, parent: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="image"):
        jobs.create_job(parent=parent, job_id="bad", job=job_spec(image=""))
    spec = job_spec()
    spec.labels["run.googleapis.com/thing"] = "x"
    with pytest.raises(exceptions.InvalidArgument, match="reserved"):
        jobs.create_job(parent=parent, job_id="bad", job=spec)


def test_list_pages_with_page_size_one(jobs: run_v2.JobsClient, parent: str) -> None:
    for name in ("a-job", "b-job", "c-job"):
        create(jobs, name)
    first = jobs.list_jobs(request={"parent": parent, "page_size": 1})
    pages = list(first.pages)
    assert [len(p.jobs) for p in pages] == [1, 1, 1]
    assert [p.jobs[0].name.rsplit("/", 1)[-1] for p in pages] == ["a-job", "b-job", "c-job"]
    other = jobs.list_jobs(parent="projects/demo-project/locations/us-central1")
    assert list(other) == []
    with pytest.raises(exceptions.InvalidArgument):
        jobs.list_jobs(request={"parent": parent, "page_token": "bogus"})


def test_update_replaces_the_spec_and_bumps_generation(
    jobs: run_v2.JobsClient, parent: str
) -> None:
    job = create(jobs, "ingest")
    job.template.task_count = 4
    job.labels["team"] = "data"
    updated = jobs.update_job(job=job).result(polling=FAST_POLL)
    assert updated.generation == 2 and updated.observed_generation == 2
    assert updated.template.task_count == 4 and updated.labels["team"] == "data"
    assert updated.uid == job.uid and updated.create_time == job.create_time
    assert updated.etag != job.etag
    assert updated.update_time >= job.update_time


def test_update_with_a_stale_etag_is_aborted(jobs: run_v2.JobsClient, parent: str) -> None:
    job = create(jobs, "ingest")
    jobs.update_job(job=job).result(polling=FAST_POLL)
    job.template.task_count = 2
    with pytest.raises(exceptions.Aborted, match="etag"):
        jobs.update_job(job=job)
    with pytest.raises(exceptions.Aborted):
        jobs.delete_job(request={"name": job.name, "etag": job.etag})


def test_update_missing_job(jobs: run_v2.JobsClient, parent: str) -> None:
    spec = job_spec()
    spec.name = f"{parent}/jobs/fresh"
    with pytest.raises(exceptions.NotFound):
        jobs.update_job(job=spec)
    created = jobs.update_job(request={"job": spec, "allow_missing": True}).result(
        polling=FAST_POLL
    )
    assert created.generation == 1
    assert jobs.get_job(name=spec.name).uid == created.uid


def test_update_validates_like_create(jobs: run_v2.JobsClient, parent: str) -> None:
    job = create(jobs, "ingest")
    job.template.template.max_retries = 11
    with pytest.raises(exceptions.InvalidArgument):
        jobs.update_job(job=job)


def test_delete_returns_the_job_and_removes_it(jobs: run_v2.JobsClient, parent: str) -> None:
    job = create(jobs, "ingest")
    deleted = jobs.delete_job(name=job.name).result(polling=FAST_POLL)
    assert deleted.name == job.name and "delete_time" in deleted
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        jobs.delete_job(name=job.name)


def test_iam_policy_round_trip_with_etags(jobs: run_v2.JobsClient, parent: str) -> None:
    job = create(jobs, "ingest")
    policy = jobs.get_iam_policy(request={"resource": job.name})
    assert list(policy.bindings) == [] and policy.etag
    policy.bindings.add(
        role="roles/run.invoker", members=[service_account("demo-project", "scheduler-caller")]
    )
    stored = jobs.set_iam_policy(request={"resource": job.name, "policy": policy})
    assert stored.etag != policy.etag and stored.version == 1
    assert jobs.get_iam_policy(request={"resource": job.name}) == stored
    with pytest.raises(exceptions.Aborted):
        jobs.set_iam_policy(request={"resource": job.name, "policy": policy})
    bad = policy_pb2.Policy(bindings=[policy_pb2.Binding(role="run.invoker", members=["x"])])
    with pytest.raises(exceptions.InvalidArgument):
        jobs.set_iam_policy(request={"resource": job.name, "policy": bad})
    with pytest.raises(exceptions.NotFound):
        jobs.get_iam_policy(request={"resource": f"{parent}/jobs/nope"})


def test_test_iam_permissions_returns_the_run_permissions(
    jobs: run_v2.JobsClient, parent: str
) -> None:
    job = create(jobs, "ingest")
    request = iam_policy_pb2.TestIamPermissionsRequest(
        resource=job.name, permissions=["run.jobs.run", "run.jobs.get", "storage.objects.get"]
    )
    assert list(jobs.test_iam_permissions(request=request).permissions) == [
        "run.jobs.run",
        "run.jobs.get",
    ]


def test_operations_get_list_wait_delete(jobs: run_v2.JobsClient, parent: str) -> None:
    op = jobs.create_job(parent=parent, job_id="ingest", job=job_spec())
    name = op.operation.name
    assert name.startswith(f"{parent}/operations/")
    got = jobs.get_operation(request=operations_pb2.GetOperationRequest(name=name))
    assert got.done and got.response.Is(run_v2.Job.pb().DESCRIPTOR)
    listed = jobs.list_operations(request=operations_pb2.ListOperationsRequest(name=parent))
    assert [o.name for o in listed.operations] == [name]
    # google-cloud-run 0.16.2's wait_operation has no response deserializer: it hands back
    # the serialized Operation.
    raw = jobs.wait_operation(request=operations_pb2.WaitOperationRequest(name=name))
    assert operations_pb2.Operation.FromString(raw).done
    jobs.delete_operation(request=operations_pb2.DeleteOperationRequest(name=name))
    with pytest.raises(exceptions.NotFound):
        jobs.get_operation(request=operations_pb2.GetOperationRequest(name=name))


def test_list_operations_pages_and_filters_on_done(jobs: run_v2.JobsClient, parent: str) -> None:
    names = [
        jobs.create_job(parent=parent, job_id=f"ingest-{i}", job=job_spec()).operation.name
        for i in range(2)
    ]
    request = operations_pb2.ListOperationsRequest(name=parent, page_size=1)
    first = jobs.list_operations(request=request)
    assert len(first.operations) == 1 and first.next_page_token
    request.page_token = first.next_page_token
    second = jobs.list_operations(request=request)
    assert not second.next_page_token
    assert sorted(o.name for o in [*first.operations, *second.operations]) == sorted(names)
    done = operations_pb2.ListOperationsRequest(name=parent, filter="done = true")
    assert len(jobs.list_operations(request=done).operations) == 2
    pending = operations_pb2.ListOperationsRequest(name=parent, filter="done = false")
    assert not jobs.list_operations(request=pending).operations
    with pytest.raises(exceptions.InvalidArgument):
        jobs.list_operations(
            request=operations_pb2.ListOperationsRequest(name=parent, filter="name:x")
        )
