"""How an execution progresses: a runner's reports become Execution and Task fields.

:class:`Tracker` receives the :class:`~govctl.emulator.run.executor.ExecutionRunner`'s hooks
(attempt started/finished, task cancelled, output line, execution finished) and fills the
fields Cloud Run fills (conditions, counts, times, ``last_attempt_result``), refreshes the
RunJob operation's metadata and writes task output to Cloud Logging.
"""

from __future__ import annotations

import contextlib
import signal
from datetime import datetime
from typing import Any

from google.cloud import run_v2
from google.logging.type import log_severity_pb2
from google.rpc import code_pb2

from govctl.emulator.run import names
from govctl.emulator.run.executor import AttemptResult, Outcome, Stream
from govctl.emulator.run.logs import task_log_entry
from govctl.emulator.run.resources import (
    CompletionStatus,
    Cond,
    RunResources,
    State,
    condition,
    set_condition,
)


def condition_of(ex: run_v2.Execution, kind: str) -> Cond | None:
    return next((c for c in ex.conditions if c.type_ == kind), None)


def finish_execution(run: RunResources, ex_name: str, outcome: Outcome) -> None:
    """Fill the final fields of an execution and finish its operations (caller holds the lock)."""
    ex = run.executions.get(ex_name)
    run.runners.pop(ex_name, None)
    if ex is None or "completion_time" in ex:
        return
    now = run.now()
    tasks = run.tasks_of(ex_name)
    for task in tasks:
        if "completion_time" not in task:
            # Only reached when the emulator stopped mid-run (or crashed, on load): the task
            # records what a cancel records, as the runner would have on a clean stop.
            if "start_time" in task and not task.last_attempt_result.status.code:
                task.last_attempt_result = cancelled_attempt()
            end_task(task, ex, now, "cancelled", CANCELLED_TASK)
    ex.running_count = 0
    ex.reconciling = False
    ex.completion_time = now
    ex.update_time = now
    for t in ("ResourcesAvailable", "Started"):
        cond = next((c for c in ex.conditions if c.type_ == t), None)
        if cond is not None and cond.state == State.CONDITION_PENDING:
            set_condition(ex.conditions, condition(t, State.CONDITION_SUCCEEDED, now))
    completed, status, error = _completion(ex, tasks, outcome, now)
    set_condition(ex.conditions, completed)
    job = run.jobs.get(names.job_of(ex_name))
    if job is not None and job.latest_created_execution.name == ex_name:
        job.latest_created_execution.completion_time = now
        job.latest_created_execution.completion_status = status
    for op_name, kind in run.execution_ops.pop(ex_name, []):
        # A cancelled execution still answers RunJob with the execution, not an error.
        run.operations.finish(op_name, ex, ex, error=error if kind == "run" else None)
    run.changed()


def _completion(
    ex: run_v2.Execution, tasks: list[run_v2.Task], outcome: Outcome, now: datetime
) -> tuple[Cond, Any, tuple[int, str] | None]:
    """The Completed condition, completion status and RunJob operation error of an outcome."""
    if outcome == "succeeded":
        elapsed = (now - ex.create_time).total_seconds()
        message = f"Execution completed successfully in {elapsed:.0f}s."
        completed = condition("Completed", State.CONDITION_SUCCEEDED, now, message)
        return completed, CompletionStatus.EXECUTION_SUCCEEDED, None
    if outcome == "failed":
        first = next(
            (
                t
                for t in tasks
                if t.last_attempt_result.status.code
                and not any(
                    c.execution_reason == Cond.ExecutionReason.CANCELLED for c in t.conditions
                )
            ),
            tasks[0],
        )
        detail = first.last_attempt_result.status.message
        message = (
            f"Task {first.name.rsplit('/', 1)[-1]} failed with message: {detail} "
            f"({ex.failed_count} of {ex.task_count} tasks failed)"
        )
        completed = completed_failed(now, message, Cond.ExecutionReason.NON_ZERO_EXIT_CODE)
        return completed, CompletionStatus.EXECUTION_FAILED, (code_pb2.FAILED_PRECONDITION, message)
    # An execution the emulator's stop (or crash) interrupted ends as a cancelled one, so
    # whoever watches it sees one outcome, with the cause in the message.
    message = "The execution was cancelled."
    if outcome == "interrupted":
        message = "The execution was cancelled: the emulator stopped while it was running."
    completed = completed_failed(now, message, Cond.ExecutionReason.CANCELLED)
    return completed, CompletionStatus.EXECUTION_CANCELLED, None


CANCELLED_TASK = "The task was cancelled."


def cancelled_attempt() -> run_v2.TaskAttemptResult:
    """The attempt result of a task killed by a cancel (SIGTERM)."""
    return run_v2.TaskAttemptResult(
        status={"code": code_pb2.CANCELLED, "message": CANCELLED_TASK},
        term_signal=signal.SIGTERM,
    )


def attempt_result(result: AttemptResult, code: int, message: str) -> run_v2.TaskAttemptResult:
    """``last_attempt_result`` as Cloud Run fills it: "At most one of exit_code or term_signal
    will be set"; ``term_signal`` "is set to non-zero if the container is terminated by the
    system" (``TaskAttemptResult``, google/cloud/run/v2/task.proto). A container killed for
    its memory, its timeout or a cancel has the signal; one that exited has its code."""
    if result.term_signal:
        return run_v2.TaskAttemptResult(
            status={"code": code, "message": message}, term_signal=result.term_signal
        )
    return run_v2.TaskAttemptResult(
        status={"code": code, "message": message}, exit_code=result.exit_code
    )


def completed_failed(now: datetime, message: str, reason: Any) -> Cond:
    """A FAILED ``Completed`` condition with its ``execution_reason``."""
    return condition("Completed", State.CONDITION_FAILED, now, message, execution_reason=reason)


def end_task(
    task: run_v2.Task, ex: run_v2.Execution, now: datetime, how: str, message: str, **extra: Any
) -> None:
    """Mark a task ended (``how``: succeeded, failed or cancelled) and count it; ``extra``
    goes into a failed task's ``Completed`` condition (its ``reason``)."""
    task.completion_time = now
    task.update_time = now
    task.reconciling = False
    if how == "succeeded":
        ex.succeeded_count += 1
        cond = condition("Completed", State.CONDITION_SUCCEEDED, now)
    elif how == "failed":
        ex.failed_count += 1
        cond = condition("Completed", State.CONDITION_FAILED, now, message, **extra)
    else:
        ex.cancelled_count += 1
        cond = completed_failed(now, message, Cond.ExecutionReason.CANCELLED)
    set_condition(task.conditions, cond)


class Tracker:
    """Turns an execution runner's reports into Execution/Task fields and log entries."""

    def __init__(self, service: RunResources, execution: str, job: names.JobName) -> None:
        self.svc = service
        self.execution = execution
        self.ex_id = execution.rsplit("/", 1)[-1]
        self.job = job

    def _state(
        self, index: int, *, unfinished: bool = False
    ) -> tuple[run_v2.Execution, run_v2.Task, datetime] | None:
        """The execution, task ``index`` and now; None once either is gone (or, with
        ``unfinished``, once the task has completed). Call with the service lock held."""
        ex = self.svc.executions.get(self.execution)
        task = self.svc.tasks.get(f"{self.execution}/tasks/{names.task_id(self.ex_id, index)}")
        if ex is None or task is None or (unfinished and "completion_time" in task):
            return None
        return ex, task, self.svc.now()

    def _touched(self, ex: run_v2.Execution, now: datetime) -> None:
        ex.update_time = now
        for op_name, _ in self.svc.execution_ops.get(self.execution, []):
            self.svc.operations.update_metadata(op_name, ex)
        self.svc.changed()

    def attempt_started(self, index: int, attempt: int) -> None:
        with self.svc.lock:
            if (found := self._state(index)) is None:
                return
            ex, task, now = found
            if "start_time" not in ex:
                ex.start_time = now
                set_condition(
                    ex.conditions, condition("ResourcesAvailable", State.CONDITION_SUCCEEDED, now)
                )
                set_condition(ex.conditions, condition("Started", State.CONDITION_SUCCEEDED, now))
                set_condition(
                    ex.conditions, condition("Completed", State.CONDITION_RECONCILING, now)
                )
            ex.running_count += 1
            task.start_time = now
            task.update_time = now
            if "scheduled_time" not in task:
                task.scheduled_time = now
            set_condition(
                task.conditions,
                condition(
                    "Completed", State.CONDITION_RECONCILING, now, f"Attempt {attempt} is running."
                ),
            )
            self._touched(ex, now)

    def attempt_finished(
        self, index: int, attempt: int, result: AttemptResult, will_retry: bool
    ) -> None:
        with self.svc.lock:
            if (found := self._state(index)) is None:
                return
            ex, task, now = found
            ex.running_count = max(0, ex.running_count - 1)
            if result.memory_exceeded:
                self._system_log(index, attempt, result.memory_exceeded)
            code, message = _attempt_status(result)
            if result.start_error is not None or result.reader_error is not None:
                self._system_log(index, attempt, message)
            task.last_attempt_result = attempt_result(result, code, message)
            reason = {"reason": result.start_reason} if result.start_reason else {}
            if result.cancelled:
                pass  # task_cancelled follows
            elif result.ok:
                end_task(task, ex, now, "succeeded", "")
            elif will_retry:
                task.retried += 1
                ex.retried_count += 1
                set_condition(
                    task.conditions,
                    condition(
                        "Completed",
                        State.CONDITION_RECONCILING,
                        now,
                        f"Attempt {attempt} failed: {message} Retrying.",
                        **reason,
                    ),
                )
            else:
                end_task(task, ex, now, "failed", message, **reason)
            self._touched(ex, now)

    def task_cancelled(self, index: int) -> None:
        with self.svc.lock:
            if (found := self._state(index, unfinished=True)) is None:
                return
            ex, task, now = found
            end_task(task, ex, now, "cancelled", CANCELLED_TASK)
            self._touched(ex, now)

    def log_line(self, index: int, attempt: int, stream: Stream, line: str) -> None:
        self._write(index, attempt, stream, line)

    def _system_log(self, index: int, attempt: int, message: str) -> None:
        """An ERROR entry in the job's system log, where Cloud Run reports a container that
        could not start (e.g. an image it cannot pull)."""
        self._write(index, attempt, "varlog/system", message, log_severity_pb2.ERROR)

    def _write(
        self, index: int, attempt: int, stream: str, line: str, severity: int | None = None
    ) -> None:
        # A line that cannot become an entry, or that the logging service refuses (e.g. over
        # 256 KiB), is dropped: the reader thread must keep draining the task's pipes, or the
        # task would block.
        with contextlib.suppress(Exception):
            entry = task_log_entry(
                project=self.job.project,
                location=self.job.location,
                job=self.job.job,
                execution=self.ex_id,
                task_index=index,
                attempt=attempt,
                stream=stream,
                line=line,
                now=self.svc.now(),
            )
            if severity is not None:
                entry.log_name = entry.log_name.replace("varlog/system", "varlog%2Fsystem")
                entry.severity = severity
            self.svc.cloud.service("logging").write_entries([entry])

    def execution_finished(self, outcome: Outcome) -> None:
        with self.svc.lock:
            finish_execution(self.svc, self.execution, outcome)
            ex = self.svc.executions.get(self.execution)
            if ex is None or "completion_time" not in ex:
                return
            completed = condition_of(ex, "Completed")
            event = {
                "execution": self.execution,
                "job": names.job_of(self.execution),
                "result": {"succeeded": "succeeded", "failed": "failed"}.get(outcome, "cancelled"),
                "message": completed.message if completed else "",
                "time": ex.completion_time,
            }
        # Cloud Monitoring's completed-execution metric; listeners run outside Run's lock.
        self.svc.cloud.publish("run.execution_completed", event)


def _attempt_status(result: AttemptResult) -> tuple[int, str]:
    if result.start_error is not None:
        return code_pb2.FAILED_PRECONDITION, result.start_error
    if result.reader_error is not None:
        return code_pb2.INTERNAL, result.reader_error
    if result.cancelled:
        return code_pb2.CANCELLED, CANCELLED_TASK
    if result.timed_out:
        # Cloud Run's words for a task stopped at its timeout (an execution's message quoted in
        # PrefectHQ/prefect#14497: "Task …-task0 failed with message: The configured timeout
        # was reached.").
        return code_pb2.DEADLINE_EXCEEDED, "The configured timeout was reached."
    if result.term_signal:
        # No source shows production's words for a container the system killed.
        return code_pb2.UNKNOWN, f"The container was terminated by signal {result.term_signal}."
    if result.exit_code != 0:
        # Production's words (an execution's Completed message in a Cloud Run audit log entry,
        # planqtn/planqtn planqtn_jobs/test_files/failure.json); the code is in ``exit_code``.
        return code_pb2.UNKNOWN, "The container exited with an error."
    return code_pb2.OK, ""
