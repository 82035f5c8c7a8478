"""Running Cloud Run executions for real, observed through the official clients only."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.rpc import code_pb2

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import (
    FAST_POLL,
    PARENT,
    condition,
    create,
    job_spec,
    wait_execution,
)

State = run_v2.Condition.State

# Task 1 fails on its first attempt only; every task prints its identity as JSON.
FLAKY = """
import json, os, sys
e = os.environ
print(json.dumps({"severity": "INFO", "message": "task", "index": e["CLOUD_RUN_TASK_INDEX"],
                  "attempt": e["CLOUD_RUN_TASK_ATTEMPT"], "count": e["CLOUD_RUN_TASK_COUNT"],
                  "job": e["CLOUD_RUN_JOB"], "execution": e["CLOUD_RUN_EXECUTION"]}))
if e["CLOUD_RUN_TASK_INDEX"] == "1" and e["CLOUD_RUN_TASK_ATTEMPT"] == "0":
    print("transient failure", file=sys.stderr)
    sys.exit(3)
"""


@pytest.fixture
def jobs(emulator: Emulator) -> run_v2.JobsClient:
    return clients.jobs()


@pytest.fixture
def executions(emulator: Emulator) -> run_v2.ExecutionsClient:
    return clients.executions()


@pytest.fixture
def tasks(emulator: Emulator) -> run_v2.TasksClient:
    return clients.tasks()


def logged(emulator: Emulator, execution_id: str) -> list[object]:
    """The Cloud Logging entries of one execution (the logging service is always loaded)."""
    pager = clients.logging().list_log_entries(
        request={
            "resource_names": ["projects/demo-project"],
            "filter": f'labels."run.googleapis.com/execution_name"="{execution_id}"',
            "page_size": 1000,
        }
    )
    return list(pager)


def test_three_tasks_parallelism_two_with_a_retry(
    emulator: Emulator,
    jobs: run_v2.JobsClient,
    executions: run_v2.ExecutionsClient,
    tasks: run_v2.TasksClient,
) -> None:
    job = create(jobs, "flaky", job_spec(FLAKY, task_count=3, parallelism=2, max_retries=1))
    op = jobs.run_job(name=job.name)
    assert isinstance(op.metadata, run_v2.Execution)
    execution = op.result(polling=FAST_POLL, timeout=20)
    assert op.metadata.name == execution.name
    assert execution.task_count == 3 and execution.parallelism == 2
    assert execution.succeeded_count == 3
    assert execution.failed_count == 0 and execution.cancelled_count == 0
    assert execution.retried_count == 1 and execution.running_count == 0
    assert condition(execution, "Completed").state == State.CONDITION_SUCCEEDED
    assert execution.start_time <= execution.completion_time
    assert execution.log_uri.startswith("https://console.cloud.google.com/logs")
    assert not execution.reconciling

    listed = list(tasks.list_tasks(parent=execution.name))
    assert [t.index for t in listed] == [0, 1, 2]
    pages = list(tasks.list_tasks(request={"parent": execution.name, "page_size": 1}).pages)
    assert [[t.index for t in p.tasks] for p in pages] == [[0], [1], [2]]
    assert [t.retried for t in listed] == [0, 1, 0]
    assert all(t.last_attempt_result.exit_code == 0 for t in listed)
    assert all(condition(t, "Completed").state == State.CONDITION_SUCCEEDED for t in listed)
    assert tasks.get_task(name=listed[1].name) == listed[1]

    job = jobs.get_job(name=job.name)
    assert job.execution_count == 1
    assert job.latest_created_execution.name == execution.name
    assert (
        job.latest_created_execution.completion_status
        == run_v2.ExecutionReference.CompletionStatus.EXECUTION_SUCCEEDED
    )

    entries = logged(emulator, execution.name.rsplit("/", 1)[-1])
    structured = [e for e in entries if e.json_payload]  # type: ignore[attr-defined]
    seen = {(e.json_payload["index"], e.json_payload["attempt"]) for e in structured}  # type: ignore[attr-defined]
    assert seen == {("0", "0"), ("1", "0"), ("1", "1"), ("2", "0")}
    first = structured[0]
    assert first.json_payload["message"] == "task"  # type: ignore[attr-defined]
    assert "severity" not in first.json_payload  # type: ignore[attr-defined]
    assert first.resource.type == "cloud_run_job"  # type: ignore[attr-defined]
    assert dict(first.resource.labels) == {  # type: ignore[attr-defined]
        "project_id": "demo-project",
        "job_name": "flaky",
        "location": "europe-west2",
    }
    assert first.log_name == "projects/demo-project/logs/run.googleapis.com%2Fstdout"  # type: ignore[attr-defined]
    (stderr,) = [e for e in entries if e.text_payload]  # type: ignore[attr-defined]
    assert stderr.text_payload == "transient failure"  # type: ignore[attr-defined]
    assert stderr.log_name.endswith("run.googleapis.com%2Fstderr")  # type: ignore[attr-defined]
    assert stderr.labels["run.googleapis.com/task_index"] == "1"  # type: ignore[attr-defined]
    assert stderr.labels["run.googleapis.com/task_attempt"] == "0"  # type: ignore[attr-defined]


def test_parallelism_is_respected(
    tmp_path: Path, jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient
) -> None:
    # Each task records when it ran; with parallelism 2, no three intervals overlap.
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    code = f"""
import os, time
start = time.monotonic(); time.sleep(0.3)
open(os.path.join({str(spans_dir)!r}, os.environ["CLOUD_RUN_TASK_INDEX"]), "w").write(
    f"{{start}} {{time.monotonic()}}")
"""
    job = create(jobs, "paced", job_spec(code, task_count=4, parallelism=2))
    execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name)
    assert execution.succeeded_count == 4
    spans = [tuple(map(float, p.read_text().split())) for p in spans_dir.iterdir()]
    assert len(spans) == 4
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_a_failing_task_fails_the_execution_and_the_operation(
    jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient, tasks: run_v2.TasksClient
) -> None:
    job = create(jobs, "broken", job_spec("import sys; sys.exit(7)", max_retries=2))
    op = jobs.run_job(name=job.name)
    with pytest.raises(exceptions.GoogleAPICallError, match="The container exited with an error"):
        op.result(polling=FAST_POLL, timeout=20)
    execution = executions.get_execution(name=op.metadata.name)
    assert execution.failed_count == 1 and execution.retried_count == 2
    completed = condition(execution, "Completed")
    assert completed.state == State.CONDITION_FAILED
    assert completed.execution_reason == run_v2.Condition.ExecutionReason.NON_ZERO_EXIT_CODE
    (task,) = tasks.list_tasks(parent=execution.name)
    assert task.retried == 2 and task.last_attempt_result.exit_code == 7
    assert task.last_attempt_result.term_signal == 0  # at most one of the two is set
    assert jobs.get_job(name=job.name).latest_created_execution.completion_status == (
        run_v2.ExecutionReference.CompletionStatus.EXECUTION_FAILED
    )


def test_a_task_over_its_timeout_is_killed(
    jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient, tasks: run_v2.TasksClient
) -> None:
    spec = job_spec("import time; time.sleep(60)", timeout=timedelta(seconds=1))
    job = create(jobs, "slow", spec)
    name = jobs.run_job(name=job.name).metadata.name
    execution = wait_execution(executions, name, timeout=10)
    assert execution.failed_count == 1
    (task,) = tasks.list_tasks(parent=name)
    result = task.last_attempt_result
    assert result.status.code == code_pb2.DEADLINE_EXCEEDED
    assert result.status.message == "The configured timeout was reached."
    # Stopped by the system (SIGTERM, SIGKILL after the grace): a signal and no exit code.
    assert result.term_signal in (signal.SIGTERM, signal.SIGKILL) and result.exit_code == 0
    assert (task.completion_time - task.start_time).total_seconds() >= 1


def test_cancel_kills_running_tasks(
    tmp_path: Path,
    jobs: run_v2.JobsClient,
    executions: run_v2.ExecutionsClient,
    tasks: run_v2.TasksClient,
) -> None:
    marker = tmp_path / "started"
    code = f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"
    job = create(jobs, "long", job_spec(code, task_count=3, parallelism=1))
    run_op = jobs.run_job(name=job.name)
    name = run_op.metadata.name
    deadline = 100
    while not marker.exists() and deadline:
        deadline -= 1
        __import__("time").sleep(0.05)
    cancelled = executions.cancel_execution(name=name).result(polling=FAST_POLL, timeout=10)
    assert cancelled.cancelled_count == 3 and cancelled.running_count == 0
    completed = condition(cancelled, "Completed")
    assert completed.execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
    # RunJob's operation ends with the cancelled execution, not an error.
    assert run_op.result(polling=FAST_POLL, timeout=10).name == name
    assert all("completion_time" in t for t in tasks.list_tasks(parent=name))
    with pytest.raises(exceptions.FailedPrecondition):
        executions.cancel_execution(name=name)


def test_overrides_apply_to_one_execution(
    jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient, tasks: run_v2.TasksClient
) -> None:
    code = (
        "import os, sys; n = int(os.environ['CLOUD_RUN_TASK_COUNT']);"
        "sys.exit(0 if sys.argv[1:] == ['--mode', 'x'] and os.environ['MODE'] == 'over'"
        " and n == 2 else 1)"
    )
    job = create(jobs, "tunable", job_spec(code, args=["--mode", "y"], env={"MODE": "base"}))
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                args=["--mode", "x"], env=[run_v2.EnvVar(name="MODE", value="over")]
            )
        ],
        task_count=2,
        timeout=timedelta(seconds=30),
    )
    op = jobs.run_job(request={"name": job.name, "overrides": overrides})
    execution = op.result(polling=FAST_POLL, timeout=20)
    assert execution.succeeded_count == 2 and execution.task_count == 2
    assert list(execution.template.containers[0].args) == ["--mode", "x"]
    assert execution.template.timeout == timedelta(seconds=30)
    # The job itself is unchanged, so a plain run fails (args y, MODE base, one task).
    plain = jobs.run_job(name=job.name)
    with pytest.raises(exceptions.GoogleAPICallError):
        plain.result(polling=FAST_POLL, timeout=20)
    assert jobs.get_job(name=job.name).template.task_count == 1


def test_invalid_overrides_and_missing_jobs(jobs: run_v2.JobsClient) -> None:
    job = create(jobs, "ingest")
    bad = run_v2.RunJobRequest.Overrides(
        container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(name="nope")]
    )
    with pytest.raises(exceptions.InvalidArgument):
        jobs.run_job(request={"name": job.name, "overrides": bad})
    with pytest.raises(exceptions.InvalidArgument):
        jobs.run_job(
            request={
                "name": job.name,
                "overrides": {"timeout": timedelta(hours=169)},
            }
        )
    with pytest.raises(exceptions.NotFound):
        jobs.run_job(name=f"{PARENT}/jobs/missing")
    with pytest.raises(exceptions.Aborted):
        jobs.run_job(request={"name": job.name, "etag": '"stale"'})


def test_a_job_without_entrypoint_fails_at_run_time(
    jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient, tasks: run_v2.TasksClient
) -> None:
    spec = job_spec(max_retries=0)
    del spec.template.template.containers[0].command[:]
    job = create(jobs, "bare", spec)
    name = jobs.run_job(name=job.name).metadata.name
    execution = wait_execution(executions, name)
    assert execution.failed_count == 1
    (task,) = tasks.list_tasks(parent=name)
    assert "no entrypoint" in task.last_attempt_result.status.message


def test_image_map_decides_what_runs(
    emulator: Emulator, jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient
) -> None:
    import sys

    emulator.cloud.image_map["*/mapped/*"] = f"{sys.executable} -c 'import sys; sys.exit(0)'"
    spec = job_spec("import sys; sys.exit(9)", image="europe-docker.pkg.dev/p/mapped/img:1")
    job = create(jobs, "mapped", spec)
    execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name)
    assert execution.succeeded_count == 1


def test_executions_list_get_delete(
    jobs: run_v2.JobsClient, executions: run_v2.ExecutionsClient, tasks: run_v2.TasksClient
) -> None:
    first = create(jobs, "first")
    second = create(jobs, "second")
    names = []
    for job in (first, first, second):
        names.append(jobs.run_job(name=job.name).result(polling=FAST_POLL, timeout=20).name)
    page = executions.list_executions(request={"parent": first.name, "page_size": 1})
    assert [len(p.executions) for p in page.pages] == [1, 1]
    every = [e.name for e in executions.list_executions(parent=f"{PARENT}/jobs/-")]
    assert sorted(every) == sorted(names)
    assert every[0] == names[-1]  # newest first
    with pytest.raises(exceptions.NotFound):
        executions.list_executions(parent=f"{PARENT}/jobs/missing")
    with pytest.raises(exceptions.InvalidArgument):
        executions.get_execution(name=f"{PARENT}/executions/x")
    deleted = executions.delete_execution(name=names[0]).result(polling=FAST_POLL)
    assert deleted.name == names[0] and "delete_time" in deleted
    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=names[0])
    with pytest.raises(exceptions.NotFound):
        tasks.list_tasks(parent=names[0])
    # Deleting a job deletes its executions.
    jobs.delete_job(name=second.name).result(polling=FAST_POLL)
    assert [e.name for e in executions.list_executions(parent=f"{PARENT}/jobs/-")] == [names[1]]


def test_state_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state, run_unmapped_images=True) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        jobs = clients.jobs()
        job = create(jobs, "kept")
        done = jobs.run_job(name=job.name).result(polling=FAST_POLL, timeout=20)
        slow = create(jobs, "slow", job_spec("import time; time.sleep(60)"))
        running_op = jobs.run_job(name=slow.name)
        policy = jobs.get_iam_policy(request={"resource": job.name})
        policy.bindings.add(role="roles/run.invoker", members=["user:a@example.com"])
        policy = jobs.set_iam_policy(request={"resource": job.name, "policy": policy})
    with Emulator(state_dir=state) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        jobs, executions = clients.jobs(), clients.executions()
        assert jobs.get_job(name=job.name).execution_count == 1
        assert executions.get_execution(name=done.name) == done
        assert jobs.get_iam_policy(request={"resource": job.name}) == policy
        # The execution that was running when the emulator stopped ended with it, as a
        # cancelled one does.
        interrupted = executions.get_execution(name=running_op.metadata.name)
        assert "completion_time" in interrupted
        completed = condition(interrupted, "Completed")
        assert completed.state == State.CONDITION_FAILED
        assert completed.execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
        assert "the emulator stopped" in completed.message
        assert interrupted.cancelled_count == 1
        (task,) = clients.tasks().list_tasks(parent=interrupted.name)
        assert task.last_attempt_result.status.message == "The task was cancelled."
        assert task.last_attempt_result.term_signal == signal.SIGTERM
        assert (
            jobs.get_job(name=slow.name).latest_created_execution.completion_status
            == run_v2.ExecutionReference.CompletionStatus.EXECUTION_CANCELLED
        )
        op = jobs.get_operation(request={"name": running_op.operation.name})
        assert op.done and not op.error.code
        assert json.dumps(len(list(clients.tasks().list_tasks(parent=done.name)))) == "1"
