"""What the job costs: an estimate from its shape and prices, and what recent runs cost.

The math is pure (``billed_seconds``, ``estimate``, ``history``) and unit-tested; ``gather``
and ``recent`` fetch what it needs through ``govctl.gcp``.

Billing facts (cloud.google.com/run/pricing, ../shared/GCP-FACTS.md): a job is billed per
task instance for its lifetime, at least one minute, rounded up to 100 ms; vCPU-seconds are
vCPUs x seconds and GiB-seconds are GiB x seconds. The free tier (240,000 vCPU-s and
450,000 GiB-s a month, three Cloud Scheduler jobs) belongs to the billing account, shared by
all its projects, so it is a line of its own that ``--no-free-tier`` drops. A month is 30 days
here (Cloud Scheduler bills per 31 days; the difference is under a cent).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from govctl import threads, validate
from govctl.config import Config
from govctl.errors import GovctlError
from govctl.gcp.billing import Price as Price
from govctl.gcp.billing import Prices as Prices

if TYPE_CHECKING:
    from govctl.services.cost_usage import ScheduleInForce
    from govctl.services.digests import Digests

DAYS_PER_MONTH = 30
MIN_BILLED_S = 60.0
FREE_VCPU_S = 240_000.0
FREE_GIB_S = 450_000.0
GIB = 2**30
MEDIAN_OF = 10  # successful executions the default run time is the median of


def billed_seconds(duration_s: float) -> float:
    """One task instance's billed time: at least a minute, in 100 ms steps (rounded up)."""
    tenths = math.ceil(round(duration_s * 10, 6))  # round() first: 0.3 * 10 is 3.0000000000000004
    return max(MIN_BILLED_S, tenths / 10)


@dataclass(frozen=True)
class Shape:
    cpu: int
    memory_mib: int
    tasks: int
    duration_s: float  # one task's run time
    runs_per_day: float

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


@dataclass(frozen=True)
class Line:
    key: str  # stable: cpu, memory, scheduler, storage, registry, search_index, …
    item: str
    unit: str
    unit_price: float
    price_source: str
    quantity_per_run: float | None
    quantity_per_month: float
    cost_per_run: float | None
    cost_per_day: float
    cost_per_month: float
    free: str = ""  # the part's free tier, in words ("" where it has none)
    note: str | None = None  # why the part is not counted (then it costs 0 here)


@dataclass(frozen=True)
class SearchUsage:
    """What the Vertex AI Search data store holds (bytes) and is asked (queries a month)."""

    index_bytes: int
    queries: int


@dataclass(frozen=True)
class Estimate:
    region: str
    shape: Shape
    billed_seconds_per_task: float
    runs_per_month: float
    lines: list[Line]
    free_tier: bool
    prices: Prices
    assumptions: list[str] = field(default_factory=list)
    deployed: bool | None = None  # False: an estimate for the settings of a job not deployed
    growth_bytes_per_month: int | None = None  # the bucket's, where known

    @property
    def cost_per_run(self) -> float:
        return money(line.cost_per_run or 0.0 for line in self.lines)

    @property
    def cost_per_day(self) -> float:
        return money(line.cost_per_day for line in self.lines)

    @property
    def cost_per_month(self) -> float:
        return money(line.cost_per_month for line in self.lines)


def money(amounts: Iterable[float]) -> float:
    """A sum of USD amounts, to the nano-dollar (the precision of Google's ``Money``).

    The free tier's lines cancel the usage they cover, but computed in another order (price x
    quantity, not quantity x price), so a plain float sum of a month the free tier covers
    left -1e-17 behind: "about $-0.00 a month". ``+ 0.0`` turns a -0.0 into 0.0.
    """
    return round(math.fsum(amounts), 9) + 0.0


def _monthly(key: str, item: str, price: Price, quantity: float, free: str = "") -> Line:
    cost = quantity * price.usd
    return Line(key, item, price.unit, price.usd, price.source, None, quantity, None,
                cost / DAYS_PER_MONTH, cost, free)  # fmt: skip


def _free(key: str, item: str, price: Price, used: float, allowance: float) -> Line | None:
    quantity = min(used, allowance)
    if quantity <= 0:
        return None
    cost = -quantity * price.free_value
    return Line(key, item, price.unit, price.free_value, price.source, None, -quantity, None,
                cost / DAYS_PER_MONTH, cost)  # fmt: skip


def not_counted(key: str, item: str, why: str, free: str = "") -> Line:
    """A part of the pipeline that is not priced, and why (it adds nothing to the total)."""
    return Line(key, item, "", 0.0, "", None, 0.0, None, 0.0, 0.0, free, why)


def _amount(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:g} {unit}"


def _job_lines(shape: Shape, prices: Prices, billed: float, runs_month: float) -> list[Line]:
    lines = []
    for key, item, price, per_unit, free, unit in (
        ("cpu", "Cloud Run job: CPU", prices.cpu, shape.cpu, FREE_VCPU_S, "vCPU-s"),
        ("memory", "Cloud Run job: memory", prices.memory, shape.memory_gib, FREE_GIB_S, "GiB-s"),
    ):
        per_run = per_unit * billed * shape.tasks
        lines.append(Line(key, item, price.unit, price.usd, price.source, per_run,
                          per_run * runs_month, per_run * price.usd,
                          per_run * price.usd * shape.runs_per_day,
                          per_run * price.usd * runs_month,
                          f"{_amount(price.free or free, unit)} a month"))  # fmt: skip
    return lines


def _storage_lines(
    prices: Prices, bucket_bytes: int | None, registry_bytes: int | None
) -> list[Line]:
    lines = []
    if bucket_bytes is not None and prices.storage is not None:
        free = prices.storage.free
        lines.append(_monthly("storage", "Cloud Storage: the bucket", prices.storage,
                              bucket_bytes / GIB,
                              f"{free:g} GB-month" if free else "none in this region"))  # fmt: skip
    if registry_bytes is not None and prices.registry is not None:
        lines.append(_monthly("registry", "Artifact Registry: images", prices.registry,
                              registry_bytes / GIB,
                              f"{prices.registry.free:g} GB"))  # fmt: skip
    return lines


def _search_lines(prices: Prices, search: SearchUsage | None, missing: str | None) -> list[Line]:
    index, queries = prices.search_index, prices.search_queries
    if index is None or queries is None:
        return []
    free = f"{index.free:g} GiB index, {queries.free * 1000:,.0f} queries a month"
    if search is None:
        return [not_counted("search", "Vertex AI Search", missing or "not configured", free)]
    return [
        _monthly("search_index", "Vertex AI Search: index", index, search.index_bytes / GIB,
                 f"{index.free:g} GiB"),
        _monthly("search_queries", "Vertex AI Search: queries", queries, search.queries / 1000,
                 f"{queries.free * 1000:,.0f} a month"),
    ]  # fmt: skip


def _free_lines(prices: Prices, lines: list[Line], scheduler_jobs: int) -> list[Line]:
    """The free tier of each part priced, as its own negative line."""
    used = {line.key: line.quantity_per_month for line in lines}
    parts = [
        ("cpu", "free tier: CPU", prices.cpu, prices.cpu.free or FREE_VCPU_S),
        ("memory", "free tier: memory", prices.memory, prices.memory.free or FREE_GIB_S),
        ("scheduler", "free tier: scheduler jobs", prices.scheduler, prices.scheduler.free),
        ("storage", "free tier: storage", prices.storage, None),
        ("registry", "free tier: Artifact Registry", prices.registry, None),
        ("search_index", "free tier: search index", prices.search_index, None),
        ("search_queries", "free tier: search queries", prices.search_queries, None),
    ]
    extra = [
        _free(f"free_tier_{key}", item, price, used[key], allowance or price.free)
        for key, item, price, allowance in parts
        if key in used and price is not None
    ]
    return [line for line in extra if line is not None]


def estimate(
    shape: Shape,
    prices: Prices,
    *,
    bucket_bytes: int | None = None,
    registry_bytes: int | None = None,
    scheduler_jobs: int = 1,
    free_tier: bool = True,
    assumptions: Sequence[str] = (),
    search: SearchUsage | None = None,
    search_missing: str | None = None,
    deployed: bool | None = None,
    growth_bytes: int | None = None,
) -> Estimate:
    """The whole pipeline's cost: the job, the scheduler, the bucket, the images, the search
    index; each part's free tier as its own negative line (``free_tier``)."""
    billed = billed_seconds(shape.duration_s)
    runs_month = shape.runs_per_day * DAYS_PER_MONTH
    lines = _job_lines(shape, prices, billed, runs_month)
    if scheduler_jobs:
        lines.append(_monthly("scheduler", "Cloud Scheduler: the schedule", prices.scheduler,
                              float(scheduler_jobs),
                              f"{prices.scheduler.free:g} jobs"))  # fmt: skip
    lines += _storage_lines(prices, bucket_bytes, registry_bytes)
    lines += _search_lines(prices, search, search_missing)
    if free_tier:
        lines += _free_lines(prices, lines, scheduler_jobs)
    return Estimate(prices.region, shape, billed, runs_month, lines, free_tier, prices,
                    list(assumptions), deployed, growth_bytes)  # fmt: skip


def runs_per_day(cron: str, time_zone: str, now: datetime) -> float:
    """How often the cron fires a day, averaged over the next 30 days in its zone."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    start = now.astimezone(ZoneInfo(time_zone))
    end = start + timedelta(days=DAYS_PER_MONTH)
    it = croniter(cron, start)
    count = 0
    while it.get_next(datetime) <= end:
        count += 1
    return count / DAYS_PER_MONTH


# --- history --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished execution as billed: when it started and its tasks' run times."""

    name: str
    status: str
    started: datetime
    task_seconds: tuple[float, ...]


@dataclass(frozen=True)
class Day:
    day: date
    executions: int
    tasks: int
    vcpu_seconds: float
    gib_seconds: float
    cost: float


@dataclass(frozen=True)
class History:
    region: str
    days: list[Day]
    cpu: int
    memory_mib: int
    prices: Prices

    @property
    def total_cost(self) -> float:
        return sum(d.cost for d in self.days)

    @property
    def executions(self) -> int:
        return sum(d.executions for d in self.days)


def history(
    runs: Sequence[Run],
    *,
    cpu: int,
    memory_mib: int,
    prices: Prices,
    days: int,
    today: date,
    zone: tzinfo | None = None,
) -> History:
    """Cost per day of ``runs`` (before the free tier), one row for each of the last ``days``."""
    rows: dict[date, list[Run]] = {today - timedelta(days=i): [] for i in range(days - 1, -1, -1)}
    for run in runs:
        day = run.started.astimezone(zone).date()
        if day in rows:
            rows[day].append(run)
    result = []
    for day, group in rows.items():
        billed = sum(billed_seconds(s) for run in group for s in run.task_seconds)
        vcpu, gib = billed * cpu, billed * memory_mib / 1024
        cost = vcpu * prices.cpu.usd + gib * prices.memory.usd
        tasks = sum(len(run.task_seconds) for run in group)
        result.append(Day(day, len(group), tasks, vcpu, gib, cost))
    return History(prices.region, result, cpu, memory_mib, prices)


def median_task_seconds(runs: Sequence[Run]) -> float | None:
    """The median task run time of the most recent successful runs."""
    good = [r for r in runs if r.status == "succeeded" and r.task_seconds][:MEDIAN_OF]
    times = [s for r in good for s in r.task_seconds]
    return statistics.median(times) if times else None


# --- gathering ------------------------------------------------------------------------


def recent(
    cfg: Config, limit: int, since: datetime | None = None, succeeded: int | None = None
) -> list[Run]:
    """The job's finished executions, newest first, as :class:`Run` records."""
    from govctl.gcp import usage

    return [
        Run(u.execution.name, u.execution.status, u.started, u.task_seconds)
        for u in usage.finished(cfg.job_path, limit, since, succeeded=succeeded)
        if u.started is not None
    ]


@dataclass(frozen=True)
class Request:
    """What the operator asked for; None means "from the settings or history"."""

    runs_per_day: float | None = None
    duration: timedelta | None = None
    price_cpu: float | None = None
    price_mem: float | None = None
    free_tier: bool = True
    include_cold: bool = False  # count runs that digested most repositories anew
    queries_per_month: int = 0  # Vertex AI Search queries


def load_prices(cfg: Config, price_cpu: float | None, price_mem: float | None) -> Prices:
    from govctl.gcp import billing

    try:
        found = billing.prices(cfg.region)
    except GovctlError:
        if price_cpu is None or price_mem is None:
            raise
        # Both prices given: the table only lacks this region's storage price.
        found = billing.bundled("us-central1", reason=f"no bundled prices for {cfg.region}")
        found = replace(found, region=cfg.region, storage=None)
    return found.with_flags(price_cpu, price_mem)


def _runs_a_day(request: Request, schedule: ScheduleInForce, now: datetime) -> tuple[float, str]:
    if request.runs_per_day is not None:
        return request.runs_per_day, f"{request.runs_per_day:g} run(s) a day (--runs-per-day)"
    per_day = runs_per_day(schedule.cron, schedule.time_zone, now)
    paused = "; it is PAUSED: no run until resumed" if schedule.paused else ""
    return per_day, (f"{per_day:.3g} run(s) a day from '{schedule.cron}' ({schedule.time_zone}) "
                     f"over the next {DAYS_PER_MONTH} days: {schedule.note}{paused}")  # fmt: skip


def _general_notes(cfg: Config, request: Request, prices: Prices, billed: float) -> list[str]:
    job = cfg.job
    notes = [f"{job.tasks} task(s) x {job.cpu} vCPU x {job.memory}: a job execution is billed "
             f"for each task's instance, at least 1 minute, in 100 ms steps (here "
             f"{validate.format_duration(billed)} a task)"]  # fmt: skip
    if prices.storage is None:
        notes.append(f"no Standard storage price for {cfg.region}: storage not counted")
    notes.append(f"a month is {DAYS_PER_MONTH} days; prices in USD, list prices before "
                 "discounts and taxes")  # fmt: skip
    if request.free_tier:
        notes.append("each free tier belongs to the billing account and is shared by all its "
                     "projects; --no-free-tier leaves them out")  # fmt: skip
    return notes


def gather(
    cfg: Config,
    request: Request,
    now: datetime,
    warn: list[str],
    held: Callable[[], Digests | None] | None = None,
) -> Estimate:
    """The whole pipeline's estimate: prices, then (concurrently) the schedule in force,
    whether the job is deployed, its run time, the bucket, the images and the search index.

    ``held`` gives the bucket's digests when the caller read them already (status).
    """
    from govctl.services import cost_usage as use

    prices = load_prices(cfg, request.price_cpu, request.price_mem)
    warn += [w for w in [offline_warning(prices)] if w]
    with threads.pool(5, "cost") as pool:
        sched = pool.submit(use.schedule, cfg, prices, warn)
        exists = pool.submit(use.deployed, cfg, prices, warn)
        timed = pool.submit(use.run_time, cfg, request.duration, request.include_cold, prices)
        bucket = pool.submit(use.bucket, cfg, prices, now, held)
        registry = pool.submit(use.registry, cfg, prices)
        threads.first_failure([bucket, registry])
        (bucket_use, bucket_note, w1), (image_size, image_note, w2) = (
            bucket.result(), registry.result())  # fmt: skip
        digest_bytes = bucket_use.digest_bytes if bucket_use else None
        search, search_note, w3 = use.search(cfg, prices, digest_bytes, request.queries_per_month)
        threads.first_failure([sched, exists, timed])
        run_time, schedule = timed.result(), sched.result()
    warn += w1 + w2 + w3 + run_time.warnings
    per_day, per_day_note = _runs_a_day(request, schedule, now)
    shape = Shape(cfg.job.cpu, cfg.job.memory_mib, cfg.job.tasks, run_time.seconds, per_day)
    notes = [run_time.note, per_day_note]
    notes += bucket_use.notes if bucket_use else [bucket_note]
    notes += [image_note, search_note]
    notes += _general_notes(cfg, request, prices, billed_seconds(run_time.seconds))
    return estimate(
        shape, prices, bucket_bytes=bucket_use.bytes if bucket_use else None,
        registry_bytes=image_size, free_tier=request.free_tier, assumptions=notes,
        search=search, search_missing=search_note if search is None else None,
        deployed=exists.result(),
        growth_bytes=bucket_use.growth_bytes if bucket_use else None,
    )  # fmt: skip


def past(cfg: Config, days: int, request: Request, now: datetime) -> History:
    """What the job's executions of the last ``days`` days cost, day by day."""
    prices = load_prices(cfg, request.price_cpu, request.price_mem)
    local = now.astimezone()
    today = local.date()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), local.tzinfo)
    # Cloud Run keeps up to 1,000 executions per job, so that bounds the listing.
    runs = recent(cfg, 1000, since)
    return history(runs, cpu=cfg.job.cpu, memory_mib=cfg.job.memory_mib, prices=prices,
                   days=days, today=today, zone=local.tzinfo)  # fmt: skip


def offline_warning(prices: Prices) -> str | None:
    """What to say when the prices are the bundled table's, not the live catalog's."""
    if not prices.offline:
        return None
    from govctl.gcp import billing

    return (f"prices from govctl's bundled table of {billing.table()['date']}, not the live "
            f"catalog ({prices.offline})")  # fmt: skip
