"""`govctl status`: the job, its schedule, recent executions, the bucket and the cost, at once.

Every part is read concurrently, and a part that cannot be read says why in its own line
instead of failing the whole screen: the morning check should show as much as it can.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from govctl import threads
from govctl.config import Config
from govctl.errors import GovctlError, NotFound, Unreachable
from govctl.gcp import executions, jobs, scheduler, usage
from govctl.gcp.jobs import JobSpec as JobSpec
from govctl.gcp.scheduler import ScheduleSpec
from govctl.services import digests, reports
from govctl.services import executions as runs
from govctl.services import schedule as schedules
from govctl.services.digests import Digests as Digests

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
    settings: str | None = None  # "'0 2 * * *' (Etc/UTC)" when the settings say otherwise


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
    bucket: Part[Digests | None]  # value None: no bucket
    failing: Part[list[dict[str, str]]]  # persistent failures (repo, reason, first_failed, …)
    cost: Part[float]  # estimated USD a month
    notes: list[str] = field(default_factory=list)


def _part(fn: Callable[[], V]) -> Part[V]:
    try:
        return Part(fn())
    except Unreachable:
        raise  # the endpoint is down: one line for the command, not one per part
    except GovctlError as err:
        return Part(error=str(err))


def _schedule(cfg: Config, now: datetime) -> Schedule:
    spec = scheduler.get(cfg.schedule_path)
    if spec is None:
        return Schedule(None, "", None)
    upcoming = schedules.fire_times(spec.cron, spec.time_zone, 1, now)
    want = cfg.schedule
    differs = (spec.cron, spec.time_zone) != (want.cron, want.time_zone)
    return Schedule(
        spec, schedules.describe(spec.cron), upcoming[0].at if upcoming else None,
        f"'{want.cron}' ({want.time_zone})" if differs else None,
    )  # fmt: skip


def _runs(cfg: Config) -> list[Run]:
    try:
        recent = executions.list_for_job(cfg.job_path, RECENT)
    except NotFound:
        return []  # not deployed: the job's line says so

    def with_totals(ex: executions.Execution) -> Run:
        totals = runs.totals_of(cfg, ex)
        return Run(ex, None if totals.error else totals)

    with threads.pool(RECENT, "status-runs") as pool:
        return threads.map_all(pool, with_totals, recent)


def _cost(cfg: Config, now: datetime, held: Future[Part[Digests | None]]) -> float:
    """The month's estimate, with the bucket as the bucket part read it (read once)."""
    from govctl.services import cost

    def digests_read() -> Digests | None:
        part = held.result()
        if part.error:
            raise GovctlError(part.error)
        return part.value

    warnings: list[str] = []
    return cost.gather(cfg, cost.Request(), now, warnings, digests_read).cost_per_month


def gather(cfg: Config, now: datetime) -> Status:
    project = cfg.require_project()
    with threads.pool(6, "status") as pool:
        # The bucket first: the cost part waits for it rather than reading it again.
        bucket = pool.submit(_part, lambda: digests.read(project, cfg.bucket))
        job = pool.submit(_part, lambda: jobs.get_job(cfg.job_path))
        sched = pool.submit(_part, lambda: _schedule(cfg, now))
        runs = pool.submit(_part, lambda: _runs(cfg))
        failing = pool.submit(_part, lambda: usage.persistent_failures(project, cfg.bucket))
        monthly = pool.submit(_part, lambda: _cost(cfg, now, bucket))
        threads.first_failure([job, sched, runs, bucket, failing, monthly])  # Unreachable
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
