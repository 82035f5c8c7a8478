"""`govctl run`: start an execution of the deployed job with the operator's additions.

Cloud Run's ``args`` override REPLACES the container's argument list, so
``gcloud run jobs execute --args=--limit=10`` silently drops what the job was deployed
with. We read the deployed job's own arguments and append to them; for
``python -m ingestion`` (argparse) a later ``--limit`` wins over an earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from govctl.config import Config
from govctl.gcp import executions
from govctl.gcp.executions import Execution, Overrides, Task
from govctl.gcp.logs import LogEntry
from govctl.services import causes
from govctl.services import executions as ex_service
from govctl.services import logs as log_service
from govctl.services.reports import Totals


@dataclass(frozen=True)
class RunRequest:
    limit: int | None = None
    force: bool = False
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    tasks: int | None = None
    task_timeout: timedelta | None = None


def extra_args(request: RunRequest) -> list[str]:
    extra: list[str] = []
    if request.limit is not None:
        extra += ["--limit", str(request.limit)]
    if request.force:
        extra.append("--force")
    return extra + list(request.args)


def build_overrides(job_args: Sequence[str], request: RunRequest) -> Overrides:
    """The overrides of one run: the job's own arguments followed by ours."""
    extra = extra_args(request)
    return Overrides(
        args=[*job_args, *extra] if extra else None,
        env=dict(request.env or {}),
        task_count=request.tasks,
        timeout_s=int(request.task_timeout.total_seconds()) if request.task_timeout else None,
    )


def start(job_path: str, request: RunRequest) -> Execution:
    overrides = build_overrides(_job_args(job_path, request), request)
    return executions.run(job_path, overrides if overrides else None)


def _job_args(job_path: str, request: RunRequest) -> tuple[str, ...]:
    if not extra_args(request):
        return ()  # nothing to append: no need to read the job (nor the right to)
    return executions.job_container(job_path).args


@dataclass(frozen=True)
class Finished:
    """How a watched execution ended: what `govctl run` reports, and its exit status."""

    execution: Execution
    totals: Totals
    failed: list[tuple[Task, list[LogEntry]]]  # each failed task and its last ERROR lines
    log_filter: str

    @property
    def succeeded(self) -> bool:
        return self.execution.status == "succeeded"

    @property
    def secrets_unreadable(self) -> bool:
        """Whether a task could not start because it could not read a [job] secrets entry."""
        return any(causes.of_task(t) == causes.Cause.SECRET for t, _ in self.failed)

    def to_dict(self) -> dict[str, object]:
        """`run --json`: the execution's summary, the repositories, each failed task."""
        return {
            **ex_service.summary_json(self.execution),
            "repositories": self.totals.to_dict(),
            "failed_tasks": [
                {
                    "index": t.index,
                    "exit_code": t.exit_code,
                    "term_signal": t.term_signal,
                    "cause": causes.of_task(t).value,
                    "timed_out": causes.of_task(t) == causes.Cause.TIMEOUT,
                    "attempt": t.attempt,
                    "message": t.message,
                    "errors": [log_service.entry_dict(e) for e in errors],
                }
                for t, errors in self.failed
            ],
            "log_filter": self.log_filter,
        }


def finished(cfg: Config, execution: Execution) -> Finished:
    """The outcome of ``execution`` (ended): totals from the run reports, and for a failed
    run each failed task with its last ERROR lines."""
    from govctl.services import watch

    failed: list[tuple[Task, list[LogEntry]]] = []
    if execution.status != "succeeded":
        project = cfg.require_project()
        errors = watch.task_errors(project, cfg.region, cfg.job.name, execution.name)
        tasks = executions.tasks(execution.full)
        failed = [(t, errors.get(t.index, [])) for t in tasks if t.status == "failed"]
    return Finished(
        execution=execution,
        totals=ex_service.totals_of(cfg, execution),
        failed=failed,
        log_filter=log_service.execution_filter(cfg.region, cfg.job.name, execution.name),
    )
