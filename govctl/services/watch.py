"""Waiting for an execution: its tasks from Cloud Run, its progress from the job's logs.

Shared by `govctl run` and `govctl schedule trigger`. Cloud Run is polled every
``poll_s``; Cloud Logging (read quota: about 60 requests a minute per project) at most
every ``log_poll_s`` for each task's newest ``progress {done}/{total}`` or
``plan: N to do`` line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from govctl.gcp import executions, logs
from govctl.gcp.executions import Execution, Task
from govctl.gcp.logs import LogEntry
from govctl.services.logs import execution_filter

POLL_S = 2.0
LOG_POLL_S = 10.0
TASKS_POLL_MANY_S = 10.0


@dataclass(frozen=True)
class TaskProgress:
    done: int
    total: int
    eta_s: float | None  # as the task estimated it at ``at``
    at: datetime


@dataclass(frozen=True)
class Snapshot:
    execution: Execution
    tasks: list[Task]
    progress: dict[int, TaskProgress] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def repositories(self) -> tuple[int, int] | None:
        """Done and to do across the tasks that have said so; None before any has."""
        if not self.progress:
            return None
        status = {t.index: t.status for t in self.tasks}
        done = total = 0
        for index, p in self.progress.items():
            total += p.total
            done += p.total if status.get(index) == "succeeded" else min(p.done, p.total)
        return done, total

    def eta_s(self, now: datetime | None = None) -> float | None:
        """When the last running task expects to finish, from its newest progress line."""
        now = now or self.now
        running = {t.index for t in self.tasks if t.status == "running"}
        etas = [
            max(0.0, p.eta_s - (now - p.at).total_seconds())
            for i, p in self.progress.items()
            if i in running and p.eta_s is not None
        ]
        return max(etas) if etas else None


def progress_filter(region: str, job: str, execution: str) -> str:
    # The progress lines carry `total`, the plan line `to_do` (ingestion/runner.py).
    return (
        f"{execution_filter(region, job, execution)} "
        "AND (jsonPayload.total:* OR jsonPayload.to_do:*)"
    )


def read_progress(project: str, region: str, job: str, execution: str) -> dict[int, TaskProgress]:
    """Each task's newest progress (or plan) line."""
    entries = logs.list_entries(project, progress_filter(region, job, execution), limit=1000)
    found: dict[int, TaskProgress] = {}
    for entry in entries:  # newest first: the first line of a task is its latest
        index = entry.task_index
        if index is None or index in found:
            continue
        f = entry.fields
        if "total" in f and "done" in f:
            eta = f.get("eta_s")
            found[index] = TaskProgress(
                int(f["done"]),
                int(f["total"]),
                float(eta) if eta is not None else None,
                entry.timestamp,
            )
        elif "to_do" in f and not entry.message.startswith("dry run"):
            found[index] = TaskProgress(0, int(f["to_do"]), None, entry.timestamp)
    return found


def watch(
    project: str,
    region: str,
    job: str,
    execution: Execution,
    *,
    poll_s: float = POLL_S,
    log_poll_s: float = LOG_POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Snapshot]:
    """Snapshots until the execution has ended (the last one is the final state)."""
    progress: dict[int, TaskProgress] = {}
    next_log_poll = next_task_poll = 0.0
    # Listing 10,000 tasks is 20 pages: with many tasks, their rows refresh less often.
    tasks_every = poll_s if execution.task_count <= 100 else max(poll_s, TASKS_POLL_MANY_S)
    tasks: list[Task] = []
    while True:
        current = executions.get(execution.full, patient=True)
        if time.monotonic() >= next_task_poll or current.done:
            tasks = executions.tasks(execution.full, patient=True)
            next_task_poll = time.monotonic() + tasks_every
        started = any(t.started for t in tasks)
        if started and (time.monotonic() >= next_log_poll or current.done):
            progress = read_progress(project, region, job, current.name) or progress
            next_log_poll = time.monotonic() + log_poll_s
        yield Snapshot(current, tasks, progress)
        if current.done:
            return
        sleep(poll_s)


def wait_done(
    execution: Execution, *, poll_s: float = POLL_S, timeout_s: float = 120.0
) -> Execution:
    """Poll until the execution has ended (after a cancel), or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    current = executions.get(execution.full)
    while not current.done and time.monotonic() < deadline:
        time.sleep(poll_s)
        current = executions.get(execution.full)
    return current


def task_errors(
    project: str, region: str, job: str, execution: str, per_task: int = 3
) -> dict[int, list[LogEntry]]:
    """The last ERROR (and worse) lines of each task's last attempt, in one read."""
    where = f"{execution_filter(region, job, execution)} AND severity>=ERROR"
    by_task: dict[int, list[LogEntry]] = {}
    for entry in logs.list_entries(project, where, limit=300):  # newest first
        if entry.task_index is None:
            continue
        lines = by_task.setdefault(entry.task_index, [])
        # The newest line names the last attempt; earlier attempts' lines would mislead.
        if len(lines) < per_task and (not lines or lines[0].attempt == entry.attempt):
            lines.append(entry)
    return {i: list(reversed(lines)) for i, lines in by_task.items()}


def wait_started(
    execution: Execution, *, poll_s: float = 0.5, timeout_s: float = 60.0
) -> Execution:
    """Poll until a task has started (or the execution ended), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    current = execution
    while current.status == "pending" and time.monotonic() < deadline:
        time.sleep(poll_s)
        current = executions.get(execution.full)
    return current
