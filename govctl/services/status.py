"""`govctl status`: the job, its schedule, recent executions, the bucket and the cost, at once.

Every part is read concurrently, and a part that cannot be read says why in its own line
instead of failing the whole screen: the morning check should show as much as it can.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from govctl.config import Config
from govctl.errors import GovctlError, NotFound
from govctl.gcp import executions, jobs, scheduler, usage
from govctl.gcp.jobs import JobSpec as JobSpec
from govctl.gcp.scheduler import ScheduleSpec
from govctl.gcp.usage import DigestStats as DigestStats
from govctl.services import executions as runs
from govctl.services import reports
from govctl.services import schedule as schedules

T = TypeVar("T", covariant=True)
V = TypeVar("V")
RECENT = 5


@dataclass(frozen=True)
class Part(Generic[T]):
    """One part of the screen: its value, or why it could not be read."""

    value: T | None = None
    error: str | None = None


@dataclass(frozen=True)
class Schedule:
    spec: ScheduleSpec | None  # None: there is no scheduler job
    description: str  # the cron in words
    next: datetime | None  # the next fire time


@dataclass(frozen=True)
class Run:
    execution: executions.Execution
    totals: reports.Totals | None


@dataclass(frozen=True)
class Status:
    project: str
    region: str
    job_name: str
    job: Part[JobSpec | None]  # value None: not deployed
    schedule: Part[Schedule]
    runs: Part[list[Run]]
    bucket: Part[DigestStats | None]  # value None: no bucket
    failing: Part[list[dict[str, str]]]  # persistent failures (repo, reason, first_failed, …)
    cost: Part[float]  # estimated USD a month
    notes: list[str] = field(default_factory=list)


def _part(fn: Callable[[], V]) -> Part[V]:
    try:
        return Part(fn())
    except GovctlError as err:
        return Part(error=str(err))


def _schedule(cfg: Config, now: datetime) -> Schedule:
    spec = scheduler.get(cfg.schedule_path)
    if spec is None:
        return Schedule(None, "", None)
    upcoming = schedules.fire_times(spec.cron, spec.time_zone, 1, now)
    return Schedule(spec, schedules.describe(spec.cron), upcoming[0].at if upcoming else None)


def _runs(cfg: Config) -> list[Run]:
    try:
        recent = executions.list_for_job(cfg.job_path, RECENT)
    except NotFound:
        return []  # not deployed: the job's line says so

    def with_totals(ex: executions.Execution) -> Run:
        totals = runs.totals_of(cfg, ex)
        return Run(ex, None if totals.error else totals)

    with ThreadPoolExecutor(max_workers=RECENT) as pool:
        return list(pool.map(with_totals, recent))


def _cost(cfg: Config, now: datetime) -> float:
    from govctl.services import cost

    warnings: list[str] = []
    return cost.gather(cfg, cost.Request(), now, warnings).cost_per_month


def gather(cfg: Config, now: datetime) -> Status:
    project = cfg.require_project()
    with ThreadPoolExecutor(max_workers=6) as pool:
        job = pool.submit(_part, lambda: jobs.get_job(cfg.job_path))
        sched = pool.submit(_part, lambda: _schedule(cfg, now))
        runs = pool.submit(_part, lambda: _runs(cfg))
        bucket = pool.submit(_part, lambda: usage.digest_stats(project, cfg.bucket))
        failing = pool.submit(_part, lambda: usage.persistent_failures(project, cfg.bucket))
        monthly = pool.submit(_part, lambda: _cost(cfg, now))
    return Status(
        project=project,
        region=cfg.region,
        job_name=cfg.job.name,
        job=job.result(),
        schedule=sched.result(),
        runs=runs.result(),
        bucket=bucket.result(),
        failing=failing.result(),
        cost=monthly.result(),
    )
