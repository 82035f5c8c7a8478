"""What a task may do and see: its environment, unmapped images, output the reader chokes on."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import run_v2

from govctl.emulator.run.executor import AttemptResult, ExecutionRunner, Outcome, TaskPlan
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import PARENT, condition, create, job_spec, wait_execution

State = run_v2.Condition.State

# The task writes its whole environment to the file named by its OUT variable.
DUMP_ENV = "import json, os; open(os.environ['OUT'], 'w').write(json.dumps(dict(os.environ)))"


def entries_of(execution: run_v2.Execution) -> list[object]:
    ex_id = execution.name.rsplit("/", 1)[-1]
    return list(
        clients.logging().list_log_entries(
            request={
                "resource_names": ["projects/demo-project"],
                "filter": f'labels."run.googleapis.com/execution_name"="{ex_id}"',
            }
        )
    )


@pytest.fixture
def strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator with the defaults a user gets: no unmapped images, loopback only."""
    with Emulator(state_dir=tmp_path / "state") as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        yield emu


def test_an_unmapped_image_fails_as_an_image_cloud_run_cannot_pull(
    strict: Emulator, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    jobs, executions = clients.jobs(), clients.executions()
    spec = job_spec(f"open({str(marker)!r}, 'w').write('ran')")
    job = create(jobs, "unmapped", spec)
    execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name)
    assert not marker.exists()  # the job's command never ran on this host
    assert execution.failed_count == 1
    completed = condition(execution, "Completed")
    assert completed.state == State.CONDITION_FAILED
    assert "europe-docker.pkg.dev/demo/test/job:latest' not found" in completed.message
    assert "--run-unmapped-images" in completed.message
    (entry,) = entries_of(execution)
    assert entry.log_name.endswith("run.googleapis.com%2Fvarlog%2Fsystem")  # type: ignore[attr-defined]
    assert entry.severity == 500  # type: ignore[attr-defined]  # ERROR
    assert "--map-image" in entry.text_payload  # type: ignore[attr-defined]

    # A mapped image still runs (its mapped command, not the job's).
    strict.cloud.image_map["*/demo/test/*"] = f"{sys.executable} -c {DUMP_ENV!r}"
    out = tmp_path / "env.json"
    job = create(jobs, "mapped", job_spec(env={"OUT": str(out)}))
    execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name)
    assert execution.succeeded_count == 1 and out.exists()


def test_tasks_get_a_clean_environment(
    strict: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the caller's shell might hold; none of it may reach a task.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "key.json"))
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "real-project")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")  # not this emulator's
    monkeypatch.setenv("LANG", "C.UTF-8")
    strict.cloud.image_map["*/demo/test/*"] = f"{sys.executable} -c {DUMP_ENV!r}"
    out = tmp_path / "env.json"
    jobs, executions = clients.jobs(), clients.executions()
    spec = job_spec(env={"OUT": str(out), "FEED": "x", "STORAGE_EMULATOR_HOST": "http://evil"})
    job = create(jobs, "envdump", spec)
    execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name)
    assert execution.succeeded_count == 1, execution
    env = json.loads(out.read_text())
    assert env["CLOUD_RUN_JOB"] == "envdump"
    assert env["CLOUD_RUN_EXECUTION"] == execution.name.rsplit("/", 1)[-1]
    assert (env["CLOUD_RUN_TASK_INDEX"], env["CLOUD_RUN_TASK_COUNT"]) == ("0", "1")
    assert env["CLOUD_RUN_TASK_ATTEMPT"] == "0"
    assert env["FEED"] == "x"
    assert env["STORAGE_EMULATOR_HOST"] == strict.env()["STORAGE_EMULATOR_HOST"]
    assert env["GOVCTL_EMULATOR_HOST"] == strict.grpc_address
    assert env["LANG"] == "C.UTF-8" and "PATH" in env and "HOME" in env
    leaked = {k for k in env if k.startswith(("GOOGLE_", "CLOUDSDK_", "AWS_"))}
    assert not leaked


def test_python_api_tasks_reach_the_emulator_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller never exported STORAGE_EMULATOR_HOST: a gs:// sink would have used real
    # credentials against real Cloud Storage.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    out = tmp_path / "env.json"
    with Emulator(run_unmapped_images=True) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        jobs, executions = clients.jobs(), clients.executions()
        job = create(jobs, "sink", job_spec(DUMP_ENV, env={"OUT": str(out)}))
        execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name)
        assert execution.succeeded_count == 1
        env = json.loads(out.read_text())
        assert env["STORAGE_EMULATOR_HOST"] == emu.env()["STORAGE_EMULATOR_HOST"]
        assert env["GOVCTL_EMULATOR_HOST"] == emu.grpc_address


def test_a_json_line_with_a_huge_integer_still_ends_the_task(emulator: Emulator) -> None:
    jobs, executions = clients.jobs(), clients.executions()
    code = "print('{\"severity\": \"INFO\", \"n\": ' + '9' * 400 + '}'); print('after')"
    job = create(jobs, "bigint", job_spec(code))
    execution = wait_execution(executions, jobs.run_job(name=job.name).metadata.name, 10)
    assert execution.succeeded_count == 1
    texts = sorted(e.text_payload for e in entries_of(execution))  # type: ignore[attr-defined]
    # Cloud Logging cannot hold the number in a jsonPayload: the line is kept as text.
    assert texts == ["after", '{"severity": "INFO", "n": ' + "9" * 400 + "}"]


class _BrokenLogging:
    """Hooks whose log sink raises: the reader must still report the attempt."""

    def __init__(self) -> None:
        self.results: list[AttemptResult] = []
        self.outcome: Outcome | None = None
        self.done = threading.Event()

    def attempt_started(self, index: int, attempt: int) -> None:
        pass

    def attempt_finished(
        self, index: int, attempt: int, result: AttemptResult, will_retry: bool
    ) -> None:
        self.results.append(result)

    def task_cancelled(self, index: int) -> None:
        pass

    def log_line(self, index: int, attempt: int, stream: str, line: str) -> None:
        raise OverflowError("int too large to convert to float")

    def execution_finished(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done.set()


def test_any_failure_reading_output_ends_the_task() -> None:
    hooks = _BrokenLogging()
    plan = TaskPlan(
        argv=[sys.executable, "-c", "import time; print('x', flush=True); time.sleep(30)"],
        env={},
        task_count=1,
        parallelism=1,
        max_retries=0,
        timeout=60,
    )
    runner = ExecutionRunner(f"{PARENT}/jobs/j/executions/e", plan, hooks)
    runner.start()
    assert hooks.done.wait(10), "the execution never finished"
    assert hooks.outcome == "failed"
    (result,) = hooks.results
    assert result.reader_error is not None and "OverflowError" in result.reader_error
