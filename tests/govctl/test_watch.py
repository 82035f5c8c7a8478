"""The live view's numbers: each task's newest progress line, read from Cloud Logging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.cloud.logging_v2.types import LogEntry

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.gcp.executions import Execution, Task
from govctl.services import watch
from tests.support.stand_in import stand_in

PROJECT = "demo-project"
T0 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def _line(execution: str, task: int, at: datetime, message: str, **fields: object) -> LogEntry:
    return LogEntry(
        log_name=f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
        resource={
            "type": "cloud_run_job",
            "labels": {"project_id": PROJECT, "job_name": "ingest", "location": "europe-west2"},
        },
        labels={
            "run.googleapis.com/execution_name": execution,
            "run.googleapis.com/task_index": str(task),
            "run.googleapis.com/task_attempt": "0",
        },
        timestamp=at,
        json_payload={"message": message, **fields},
    )


def _task(index: int, status: str) -> Task:
    return Task(index, status, 1, 0, None, None, "", T0, None)


def test_each_tasks_newest_progress_or_plan_line_drives_the_totals(emulator: Emulator) -> None:
    lines = [
        _line("ingest-a", 0, T0, "plan: 10 to do, 5 unchanged", to_do=10, unchanged=5),
        _line("ingest-a", 0, T0 + timedelta(seconds=30), "progress 4/10", done=4, total=10,
              rate_per_s=0.13, eta_s=45.0),
        _line("ingest-a", 0, T0 + timedelta(seconds=60), "progress 6/10", done=6, total=10,
              rate_per_s=0.1, eta_s=40.0),
        _line("ingest-a", 1, T0 + timedelta(seconds=5), "plan: 8 to do, 0 unchanged", to_do=8),
        _line("ingest-a", 2, T0 + timedelta(seconds=50), "ingested alphagov/x", repo="x"),
        _line("ingest-b", 2, T0, "progress 9/9", done=9, total=9, eta_s=0.0),  # another run
    ]  # fmt: skip
    clients.logging().write_log_entries(entries=lines)

    progress = watch.read_progress(PROJECT, "europe-west2", "ingest", "ingest-a")

    assert set(progress) == {0, 1}
    assert (progress[0].done, progress[0].total, progress[0].eta_s) == (6, 10, 40.0)
    assert (progress[1].done, progress[1].total, progress[1].eta_s) == (0, 8, None)

    execution = Execution("ingest-a", "x", "ingest", "running", None, "", T0, T0, None, 3, 0,
                          0, 0, 2, 0, "")  # fmt: skip
    now = T0 + timedelta(seconds=70)  # 10 s after task 0 said "40 s to go"
    snap = watch.Snapshot(execution, [_task(0, "running"), _task(1, "running")], progress, now)
    assert snap.repositories() == (6, 18)
    assert snap.eta_s() == 30.0
    # A task that succeeded counts all its repositories, whatever its last line said.
    done = watch.Snapshot(execution, [_task(0, "succeeded"), _task(1, "running")], progress, now)
    assert done.repositories() == (10, 18)
    assert done.eta_s() is None  # no running task has estimated yet


def test_the_view_off_a_terminal_tells_changes_once(capsys: pytest.CaptureFixture[str]) -> None:
    from govctl.render import when
    from govctl.render_run import LiveView

    execution = Execution("ingest-a", "x", "ingest", "running", None, "", T0, T0, None, 2, 0,
                          0, 0, 2, 0, "")  # fmt: skip
    few = [_task(0, "running"), _task(1, "pending")]
    with LiveView(execution, live=False) as view:
        view.update(watch.Snapshot(execution, few, {}, T0))
        view.update(watch.Snapshot(execution, few, {}, T0))  # nothing new: nothing said
        view.update(watch.Snapshot(execution, [_task(0, "succeeded"), _task(1, "running")]))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"Execution ingest-a started {when(T0)}, 2 tasks"
    assert [line.split()[:3] for line in err[1:]] == [
        ["task", "0", "running"], ["task", "0", "succeeded"], ["task", "1", "running"]
    ]  # fmt: skip

    # Many tasks: counts when they change, and each failure by itself.
    many = [_task(i, "running") for i in range(20)]
    with LiveView(execution, live=False) as view:
        view.update(watch.Snapshot(execution, many, {}, T0))
        many[3] = _task(3, "failed")
        view.update(watch.Snapshot(execution, many, {}, T0))
    err = capsys.readouterr().err.splitlines()
    assert err[1:] == [
        " tasks  20 running",
        " task 3   failed     attempt 1",
        " tasks  19 running, 1 failed",
    ]


def test_a_watcher_rides_out_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a loopback Run API that is UNAVAILABLE twice before it answers."""

    import grpc
    from google.cloud import run_v2

    from govctl.errors import CloudError
    from govctl.gcp import executions

    calls: list[str] = []

    def get_execution(
        request: run_v2.GetExecutionRequest, context: grpc.ServicerContext
    ) -> run_v2.Execution:
        calls.append(request.name)
        if len(calls) % 3:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return run_v2.Execution(name=request.name, task_count=1, running_count=1)

    methods = {
        "GetExecution": grpc.unary_unary_rpc_method_handler(
            get_execution,
            request_deserializer=run_v2.GetExecutionRequest.deserialize,
            response_serializer=run_v2.Execution.serialize,
        )
    }
    name = "projects/p/locations/europe-west2/jobs/ingest/executions/ingest-a"
    with stand_in("google.cloud.run.v2.Executions", methods) as address:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
        with pytest.raises(CloudError, match="did not answer"):
            executions.get(name)  # a one-off read says so at once
        calls.clear()
        assert executions.get(name, patient=True).status == "running"
    assert len(calls) == 3


def test_the_live_view_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from govctl.render_run import LiveView

    execution = Execution("ingest-a", "x", "ingest", "running", None, "", T0, T0, None, 2, 0,
                          0, 0, 2, 0, "")  # fmt: skip
    view = LiveView(execution, live=True)  # not entered: no refresh thread

    def draw() -> str:
        out = io.StringIO()
        Console(file=out, width=100, color_system=None).print(view._renderable())
        return out.getvalue()

    view.update(watch.Snapshot(execution, [_task(0, "running"), _task(1, "pending")], {}, T0))
    assert "counted once the tasks have planned" in draw()

    now = datetime.now(UTC)
    progress = {
        0: watch.TaskProgress(5, 10, 60.0, now),
        1: watch.TaskProgress(0, 10, None, now),
    }
    view.update(watch.Snapshot(execution, [_task(0, "running"), _task(1, "running")],
                               progress, now))  # fmt: skip
    screen = draw()
    assert "task 0" in screen and "attempt 1" in screen
    assert "5/20" in screen and "ETA 0:5" in screen  # 60 s from a line written just now
