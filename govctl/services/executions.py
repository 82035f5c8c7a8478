"""`govctl executions`: find an execution by name or as the latest, describe and cancel it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from govctl.config import Config
from govctl.errors import GovctlError, NotFound, UsageError
from govctl.gcp import executions
from govctl.gcp.executions import Execution as Execution
from govctl.gcp.executions import Task as Task
from govctl.services import causes, reports
from govctl.services.logs import execution_filter

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,125}[a-z0-9])?")


def check_name(name: str, where: str = "NAME") -> str:
    """An execution id (``govreposcrape-ingestion-x7k2p``) or its full resource name."""
    short = executions.execution_id(name) if name.startswith("projects/") else name
    if not _NAME.fullmatch(short):
        raise UsageError(
            f"invalid {where} {name!r}: expected an execution name such as "
            "govreposcrape-ingestion-x7k2p (lowercase letters, digits and '-')",
        )
    return short


def choose(name: str | None, latest: bool, *, what: str = "NAME") -> str | None:
    """Validate the NAME | --latest choice; the short name, or None for the latest."""
    if name and latest:
        raise UsageError(f"give {what} or --latest, not both")
    if not name and not latest:
        raise UsageError(f"give an execution {what}, or --latest for the newest one")
    return check_name(name) if name else None


def recent(cfg: Config, limit: int) -> list[Execution]:
    """The job's newest executions, newest first."""
    return executions.list_for_job(cfg.job_path, limit=limit)


def refresh(execution: Execution, *, patient: bool = False) -> Execution:
    """The execution as it is now (``patient``: retrying while Cloud Run does not answer)."""
    return executions.get(execution.full, patient=patient)


def tasks_of(execution: Execution) -> list[Task]:
    return executions.tasks(execution.full)


def resolve(cfg: Config, name: str | None) -> Execution:
    """The named execution of the job, or its newest; unknown names list the latest ones."""
    if name is None:
        newest = executions.list_for_job(cfg.job_path, limit=1)
        if not newest:
            raise GovctlError(
                f"job {cfg.job.name} has no executions yet", fix="start one: govctl run"
            )
        return newest[0]
    try:
        return executions.get(f"{cfg.job_path}/executions/{name}")
    except NotFound:
        recent = executions.list_for_job(cfg.job_path, limit=5)
        names = ", ".join(e.name for e in recent) or "none yet"
        raise NotFound(
            f"execution {name} not found in job {cfg.job.name}", fix=f"latest: {names}"
        ) from None


@dataclass(frozen=True)
class Details:
    execution: Execution
    tasks: list[Task]
    totals: reports.Totals
    log_filter: str
    bucket: str

    def to_dict(self, now: datetime) -> dict[str, object]:
        """`executions show --json`: the summary, a row per task, the totals, the filter."""
        return {
            **summary_json(self.execution, now),
            "task_list": [
                {
                    "index": t.index,
                    "status": t.status,
                    "exit_code": t.exit_code,
                    "term_signal": t.term_signal,
                    "cause": causes.of_task(t).value if t.status == "failed" else None,
                    "retries": t.retried,
                    "duration_s": _round(t.duration_s(now)),
                    "message": t.message,
                }
                for t in self.tasks
            ],
            "repositories": self.totals.to_dict(),
            "log_filter": self.log_filter,
            "log_uri": self.execution.log_uri,
        }


def bucket_of(cfg: Config, execution: Execution) -> str:
    """The bucket the execution wrote to: its own GCS_BUCKET_NAME, else the settings'."""
    return execution.env.get("GCS_BUCKET_NAME") or cfg.bucket


def totals_of(cfg: Config, execution: Execution) -> reports.Totals:
    """The run reports' totals; when they cannot be read, why (the rest still shows)."""
    try:
        found = reports.read(bucket_of(cfg, execution), execution.name, cfg.project)
    except GovctlError as err:
        return reports.Totals(tasks=0, error=str(err))
    return reports.totals(found)


def details(cfg: Config, execution: Execution) -> Details:
    return Details(
        execution=execution,
        tasks=executions.tasks(execution.full),
        totals=totals_of(cfg, execution),
        log_filter=execution_filter(cfg.region, cfg.job.name, execution.name),
        bucket=bucket_of(cfg, execution),
    )


def cancel(execution: Execution) -> Execution:
    from govctl.services.watch import wait_done

    if execution.done:
        raise GovctlError(f"execution {execution.name} has already {execution.status}")
    executions.cancel(execution.full)
    return wait_done(execution, poll_s=0.5)


def summary_json(execution: Execution, now: datetime | None = None) -> dict[str, Any]:
    return {
        "name": execution.name,
        "status": execution.status,
        "reason": execution.reason,
        "created": execution.created,
        "started": execution.started,
        "completed": execution.completed,
        "duration_s": _round(execution.duration_s(now)),
        "tasks": {
            "total": execution.task_count,
            "succeeded": execution.succeeded,
            "failed": execution.failed,
            "cancelled": execution.cancelled,
            "running": execution.running,
            "retried": execution.retried,
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
