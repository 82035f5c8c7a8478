"""Cloud Run executions and tasks as govctl's own records (run, list, get, cancel).

An execution's status is read the way the console reads it: the ``Completed`` condition
(SUCCEEDED, FAILED with an execution reason, or still RECONCILING/PENDING) and the task
counters. Names: ``full`` is ``projects/P/locations/R/jobs/J/executions/E``; ``name`` is E.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from govctl.gcp import clients
from govctl.gcp.errors import translate
from govctl.gcp.jobs import job_id

OVERRIDES_DENIED = (
    "running with overrides (--limit, --arg, --env, --tasks, --task-timeout) needs "
    "run.jobs.runWithOverrides: grant roles/run.jobsExecutorWithOverrides "
    "(or roles/run.developer); roles/run.invoker allows only a plain run"
)


@dataclass(frozen=True)
class Execution:
    name: str
    full: str
    job: str
    status: str  # running, succeeded, failed, cancelled, pending
    reason: str | None  # e.g. NON_ZERO_EXIT_CODE, CANCELLED
    message: str
    created: datetime | None
    started: datetime | None
    completed: datetime | None
    task_count: int
    succeeded: int
    failed: int
    cancelled: int
    running: int
    retried: int
    log_uri: str
    labels: dict[str, str] = field(default_factory=dict)
    # The first container as this execution ran it (the job's spec with the run's overrides).
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def duration_s(self, now: datetime | None = None) -> float | None:
        start = self.started or self.created
        end = self.completed or now
        return (end - start).total_seconds() if start and end else None


@dataclass(frozen=True)
class Task:
    """A task as Cloud Run reports it. Why it failed is in the fields
    (:mod:`govctl.services.causes` reads them), never in ``message``, which is for people."""

    index: int
    status: str  # pending, running, succeeded, failed, cancelled
    attempt: int  # 1-based: retries + 1 (0 while never started)
    retried: int
    exit_code: int | None  # None when the system ended the container (see term_signal)
    term_signal: int | None
    message: str
    started: datetime | None  # of the current (or last) attempt
    completed: datetime | None
    # last_attempt_result.status.code as its google.rpc.Code name ("DEADLINE_EXCEEDED", …)
    status_code: str | None = None
    # The Completed condition's reason: a CommonReason ("SECRETS_ACCESS_CHECK_FAILED") or
    # ExecutionReason ("CANCELLED") name, as set.
    reason: str | None = None
    timeout_s: float | None = None  # the task's timeout (Task.timeout)

    def duration_s(self, now: datetime | None = None) -> float | None:
        end = self.completed or now
        return (end - self.started).total_seconds() if self.started and end else None


@dataclass(frozen=True)
class JobContainer:
    """The deployed job's (first) container: what a run starts from."""

    image: str
    args: tuple[str, ...]
    env: dict[str, str]
    task_count: int


@dataclass(frozen=True)
class Overrides:
    """What one run changes; ``args`` is the WHOLE argument list (Cloud Run replaces it)."""

    args: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    task_count: int | None = None
    timeout_s: int | None = None

    def __bool__(self) -> bool:
        return bool(
            self.args is not None or self.env or self.task_count or self.timeout_s is not None
        )


def execution_id(name: str) -> str:
    """The execution's id in its resource name
    ``projects/P/locations/R/jobs/J/executions/ID`` (the client library's parser; a name of
    another form is returned as it is)."""
    from google.cloud import run_v2

    return run_v2.ExecutionsClient.parse_execution_path(name).get("execution", name)


def _time(value: Any) -> datetime | None:
    # proto-plus gives DatetimeWithNanoseconds, or a zero epoch for an unset field.
    if value is None or not getattr(value, "year", 0) or value.timestamp() <= 0:
        return None
    return value  # type: ignore[no-any-return]


def _completed(conditions: Any) -> Any:
    return next((c for c in conditions if c.type_ == "Completed"), None)


def to_execution(ex: Any) -> Execution:
    from google.cloud import run_v2

    state = run_v2.Condition.State
    cond = _completed(ex.conditions)
    reason = None
    if cond is not None and cond.execution_reason:
        reason = run_v2.Condition.ExecutionReason(cond.execution_reason).name
        if reason == "EXECUTION_REASON_UNDEFINED":
            reason = None
    if cond is not None and cond.state == state.CONDITION_SUCCEEDED:
        status = "succeeded"
    elif cond is not None and cond.state == state.CONDITION_FAILED:
        status = "cancelled" if reason in ("CANCELLED", "DELETED") else "failed"
    elif _time(ex.start_time) or ex.running_count:
        status = "running"
    else:
        status = "pending"
    containers = ex.template.containers if "template" in ex else []
    container = containers[0] if containers else None
    return Execution(
        name=execution_id(ex.name),
        full=ex.name,
        job=ex.job,
        status=status,
        reason=reason,
        message=cond.message if cond is not None else "",
        created=_time(ex.create_time),
        started=_time(ex.start_time),
        completed=_time(ex.completion_time),
        task_count=ex.task_count,
        succeeded=ex.succeeded_count,
        failed=ex.failed_count,
        cancelled=ex.cancelled_count,
        running=ex.running_count,
        retried=ex.retried_count,
        log_uri=ex.log_uri,
        labels=dict(ex.labels),
        args=tuple(container.args) if container is not None else (),
        env={e.name: e.value for e in container.env} if container is not None else {},
    )


def to_task(task: Any) -> Task:
    from google.cloud import run_v2

    state = run_v2.Condition.State
    cond = _completed(task.conditions)
    result = task.last_attempt_result if "last_attempt_result" in task else None
    cancelled = cond is not None and cond.execution_reason == (
        run_v2.Condition.ExecutionReason.CANCELLED
    )
    if cond is not None and cond.state == state.CONDITION_SUCCEEDED:
        status = "succeeded"
    elif cond is not None and cond.state == state.CONDITION_FAILED:
        status = "cancelled" if cancelled else "failed"
    elif _time(task.start_time):
        status = "running"
    else:
        status = "pending"
    started = _time(task.start_time)
    signal = (result.term_signal or None) if result is not None else None
    ended = result if status != "running" else None
    return Task(
        index=task.index,
        status=status,
        attempt=task.retried + 1 if started else 0,
        retried=task.retried,
        # "At most one of exit_code or term_signal will be set" (TaskAttemptResult).
        exit_code=ended.exit_code if ended is not None and signal is None else None,
        term_signal=signal,
        message=cond.message if cond is not None else "",
        started=started,
        completed=_time(task.completion_time),
        status_code=_code_name(ended.status.code) if ended is not None else None,
        reason=_reason_name(cond),
        timeout_s=task.timeout.total_seconds() if "timeout" in task else None,
    )


def _code_name(code: int) -> str | None:
    from google.rpc import code_pb2

    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:  # a code this library does not know
        return None


def _reason_name(cond: Any) -> str | None:
    """The name of whichever of the condition's ``reasons`` is set (None: none is)."""
    from google.cloud import run_v2

    if cond is None:
        return None
    which = run_v2.Condition.pb(cond).WhichOneof("reasons")
    enums: dict[str, Any] = {
        "reason": run_v2.Condition.CommonReason,
        "revision_reason": run_v2.Condition.RevisionReason,
        "execution_reason": run_v2.Condition.ExecutionReason,
    }
    if which not in enums:
        return None
    return str(enums[which](getattr(cond, which)).name)


def run(job_path: str, overrides: Overrides | None = None) -> Execution:
    """Start an execution and return it as soon as Cloud Run has created it."""
    from google.cloud import run_v2

    request = run_v2.RunJobRequest(name=job_path)
    if overrides:
        container = run_v2.RunJobRequest.Overrides.ContainerOverride(
            args=list(overrides.args or []),
            clear_args=overrides.args is not None and not overrides.args,
            env=[run_v2.EnvVar(name=k, value=v) for k, v in overrides.env.items()],
        )
        request.overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[container],
            task_count=overrides.task_count or 0,
        )
        if overrides.timeout_s is not None:
            request.overrides.timeout = {"seconds": overrides.timeout_s}
    denied = OVERRIDES_DENIED if overrides else "grant roles/run.invoker on the job"
    with translate(
        f"run job {job_id(job_path)}",
        not_found="deploy it first: govctl deploy",
        denied=denied,
    ):
        operation = clients.jobs().run_job(request=request)
        # RunJob's operation stays open until the execution ends; its metadata is the
        # execution from the start.
        return to_execution(operation.metadata)


def job_container(job_path: str) -> JobContainer:
    """The job's image, arguments and environment, as deployed."""
    with translate(f"get job {job_id(job_path)}", not_found="deploy it first: govctl deploy"):
        job = clients.jobs().get_job(name=job_path)
    containers = job.template.template.containers
    first = containers[0] if containers else None
    return JobContainer(
        image=first.image if first is not None else "",
        args=tuple(first.args) if first is not None else (),
        env={e.name: e.value for e in first.env} if first is not None else {},
        task_count=job.template.task_count or 1,
    )


def _patient(patient: bool) -> Any:
    """For a watcher: ride out a minute of UNAVAILABLE or timeouts rather than stop
    watching an execution that goes on regardless (reads are safe to repeat)."""
    from google.api_core import exceptions as gex
    from google.api_core import gapic_v1, retry

    if not patient:
        return gapic_v1.method.DEFAULT
    return retry.Retry(
        predicate=retry.if_exception_type(gex.ServiceUnavailable, gex.DeadlineExceeded),
        initial=0.5,
        maximum=10.0,
        timeout=PATIENCE_S,
    )


PATIENCE_S = 60.0


def get(full_name: str, *, patient: bool = False) -> Execution:
    with translate(f"get execution {execution_id(full_name)}"):
        return to_execution(
            clients.executions().get_execution(name=full_name, retry=_patient(patient))
        )


def list_for_job(job_path: str, limit: int = 20) -> list[Execution]:
    """The job's executions, newest first (as Cloud Run lists them)."""
    from google.cloud import run_v2

    result: list[Execution] = []
    with translate(
        f"list executions of {job_id(job_path)}",
        not_found="deploy it first: govctl deploy",
    ):
        pager = clients.executions().list_executions(
            request=run_v2.ListExecutionsRequest(parent=job_path, page_size=min(limit, 100))
        )
        for ex in pager:
            result.append(to_execution(ex))
            if len(result) >= limit:
                break
    result.sort(key=lambda e: e.created.timestamp() if e.created else 0.0, reverse=True)
    return result


def tasks(full_name: str, *, patient: bool = False) -> list[Task]:
    from google.cloud import run_v2

    with translate(f"list tasks of {execution_id(full_name)}"):
        pager = clients.tasks().list_tasks(
            request=run_v2.ListTasksRequest(parent=full_name, page_size=500),
            retry=_patient(patient),
        )
        return sorted((to_task(t) for t in pager), key=lambda t: t.index)


def cancel(full_name: str) -> Execution:
    with translate(f"cancel execution {execution_id(full_name)}"):
        operation = clients.executions().cancel_execution(name=full_name)
        return to_execution(operation.metadata)
