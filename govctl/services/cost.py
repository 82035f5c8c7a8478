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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

from govctl import validate
from govctl.config import Config
from govctl.errors import GovctlError, NotFound
from govctl.gcp.billing import Price as Price
from govctl.gcp.billing import Prices as Prices

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
    key: str  # stable: cpu, memory, scheduler, storage, free_tier_cpu, …
    item: str
    unit: str
    unit_price: float
    price_source: str
    quantity_per_run: float | None
    quantity_per_month: float
    cost_per_run: float | None
    cost_per_day: float
    cost_per_month: float


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


def _monthly(key: str, item: str, price: Price, quantity: float) -> Line:
    cost = quantity * price.usd
    return Line(key, item, price.unit, price.usd, price.source, None, quantity, None,
                cost / DAYS_PER_MONTH, cost)  # fmt: skip


def _free(key: str, item: str, price: Price, used: float, allowance: float) -> Line | None:
    quantity = min(used, allowance)
    if quantity <= 0:
        return None
    cost = -quantity * price.free_value
    return Line(key, item, price.unit, price.free_value, price.source, None, -quantity, None,
                cost / DAYS_PER_MONTH, cost)  # fmt: skip


def estimate(
    shape: Shape,
    prices: Prices,
    *,
    bucket_bytes: int | None = None,
    registry_bytes: int | None = None,
    scheduler_jobs: int = 1,
    free_tier: bool = True,
    assumptions: Sequence[str] = (),
) -> Estimate:
    billed = billed_seconds(shape.duration_s)
    runs_month = shape.runs_per_day * DAYS_PER_MONTH
    lines: list[Line] = []
    for key, item, price, per_unit in (
        ("cpu", "Cloud Run jobs CPU", prices.cpu, shape.cpu),
        ("memory", "Cloud Run jobs memory", prices.memory, shape.memory_gib),
    ):
        per_run = per_unit * billed * shape.tasks
        lines.append(Line(key, item, price.unit, price.usd, price.source, per_run,
                          per_run * runs_month, per_run * price.usd,
                          per_run * price.usd * shape.runs_per_day,
                          per_run * price.usd * runs_month))  # fmt: skip
    cpu_month, mem_month = lines[0].quantity_per_month, lines[1].quantity_per_month
    if scheduler_jobs:
        lines.append(_monthly("scheduler", "Cloud Scheduler job", prices.scheduler,
                              float(scheduler_jobs)))  # fmt: skip
    storage_gib = None
    if bucket_bytes is not None and prices.storage is not None:
        storage_gib = bucket_bytes / GIB
        lines.append(_monthly("storage", "Cloud Storage (Standard)", prices.storage, storage_gib))
    registry_gib = None
    if registry_bytes is not None and prices.registry is not None:
        registry_gib = registry_bytes / GIB
        lines.append(_monthly("registry", "Artifact Registry storage", prices.registry,
                              registry_gib))  # fmt: skip
    if free_tier:
        extra = [
            _free("free_tier_cpu", "free tier: CPU", prices.cpu, cpu_month,
                  prices.cpu.free or FREE_VCPU_S),
            _free("free_tier_memory", "free tier: memory", prices.memory, mem_month,
                  prices.memory.free or FREE_GIB_S),
            _free("free_tier_scheduler", "free tier: scheduler jobs", prices.scheduler,
                  float(scheduler_jobs), prices.scheduler.free),
        ]  # fmt: skip
        if storage_gib is not None and prices.storage is not None:
            extra.append(_free("free_tier_storage", "free tier: storage", prices.storage,
                               storage_gib, prices.storage.free))  # fmt: skip
        if registry_gib is not None and prices.registry is not None:
            extra.append(_free("free_tier_registry", "free tier: Artifact Registry",
                               prices.registry, registry_gib, prices.registry.free))  # fmt: skip
        lines += [line for line in extra if line is not None]
    return Estimate(prices.region, shape, billed, runs_month, lines, free_tier, prices,
                    list(assumptions))  # fmt: skip


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


def gather(cfg: Config, request: Request, now: datetime, warn: list[str]) -> Estimate:
    """The estimate for the settings, reading prices, run times and the bucket's size.

    Prices come first (when Google Cloud does not answer, nothing else is tried); the run
    times, the bucket and the registry are then read concurrently.
    """
    from concurrent.futures import ThreadPoolExecutor

    prices = load_prices(cfg, request.price_cpu, request.price_mem)
    warn += [w for w in [offline_warning(prices)] if w]
    with ThreadPoolExecutor(max_workers=3) as pool:
        run_time = pool.submit(_run_time, cfg, request, prices)
        bucket = pool.submit(_bucket, cfg, prices)
        registry = pool.submit(_registry, cfg, prices)
        (duration_s, time_note, w1), (size, bucket_note, w2), (image_size, image_note, w3) = (
            run_time.result(), bucket.result(), registry.result())  # fmt: skip
    warn += w1 + w2 + w3
    notes = [time_note]
    job = cfg.job
    if request.runs_per_day is not None:
        per_day = request.runs_per_day
        notes.append(f"{per_day:g} run(s) a day (--runs-per-day)")
    else:
        per_day = runs_per_day(cfg.schedule.cron, cfg.schedule.time_zone, now)
        notes.append(f"{per_day:.3g} run(s) a day from the schedule '{cfg.schedule.cron}' "
                     f"({cfg.schedule.time_zone}) over the next {DAYS_PER_MONTH} days")  # fmt: skip
    shape = Shape(job.cpu, job.memory_mib, job.tasks, duration_s, per_day)
    notes.append(f"{job.tasks} task(s) x {job.cpu} vCPU x {job.memory}, each billed "
                 f"{validate.format_duration(billed_seconds(duration_s))} (at least 1 minute, "
                 f"in 100 ms steps)")  # fmt: skip
    notes.append(bucket_note)
    if prices.storage is None:
        notes.append(f"no Standard storage price for {cfg.region}: storage not counted")
    notes.append(image_note)
    notes.append(f"a month is {DAYS_PER_MONTH} days; prices in USD, list prices before "
                 "discounts and taxes")  # fmt: skip
    if request.free_tier:
        notes.append("the free tier belongs to the billing account and is shared by all its "
                     "projects; --no-free-tier leaves it out")  # fmt: skip
    return estimate(shape, prices, bucket_bytes=size, registry_bytes=image_size,
                    free_tier=request.free_tier, assumptions=notes)  # fmt: skip


def _run_time(cfg: Config, request: Request, prices: Prices) -> tuple[float, str, list[str]]:
    """One task's run time, what to say about where it came from, and warnings."""
    if request.duration is not None:
        seconds = request.duration.total_seconds()
        return seconds, f"run time {validate.format_duration(seconds)} per task (--duration)", []
    median, why, used, warns = None, "no project set", 0, []
    if not prices.reachable:
        why = "Google Cloud unreachable"
    elif cfg.project is not None:
        try:
            good = recent(cfg, 100, succeeded=MEDIAN_OF)
            median, used = median_task_seconds(good), len(good)
            why = "no successful execution yet"
        except NotFound:
            why = "the job is not deployed"
        except GovctlError as err:
            why = "executions unreadable"
            warns.append(str(err))
    if median is not None:
        return median, (f"run time {validate.format_duration(median)} per task: the median of "
                        f"the tasks of the last {used} successful execution(s)"), warns  # fmt: skip
    seconds = cfg.job.task_timeout.total_seconds()
    return seconds, (f"run time {validate.format_duration(seconds)} per task: the task timeout "
                     f"({why}; a real run is usually much shorter)"), warns  # fmt: skip


def _bucket(cfg: Config, prices: Prices) -> tuple[int | None, str, list[str]]:
    """The bucket's size, what to say about it, and warnings."""
    from govctl.gcp import usage

    if cfg.project is None:
        return None, "bucket storage not counted: no project set", []
    if not prices.reachable:
        return None, "bucket storage not counted: Google Cloud unreachable", []
    try:
        size = usage.bucket_bytes(cfg.project, cfg.bucket)
    except NotFound:
        return None, f"bucket gs://{cfg.bucket} not found: storage not counted", []
    except GovctlError as err:
        return None, f"bucket gs://{cfg.bucket} unreadable: storage not counted", [str(err)]
    return size, f"bucket gs://{cfg.bucket} holds {_size(size)} today", []


def _registry(cfg: Config, prices: Prices) -> tuple[int | None, str, list[str]]:
    """The size of the job image's Artifact Registry repository, what to say, and warnings."""
    from govctl.gcp import artifacts, usage

    skipped = "Artifact Registry storage not counted"
    if cfg.project is None:
        return None, f"{skipped}: no project set", []
    if not prices.reachable:
        return None, f"{skipped}: Google Cloud unreachable", []
    try:
        ref = artifacts.parse_image(cfg.job.image)
    except GovctlError:
        return None, f"{skipped}: {cfg.job.image} is not in it", []
    where = f"{ref.location}-docker.pkg.dev/{ref.project}/{ref.repository}"
    try:
        size = usage.registry_bytes(ref.project, ref.location, ref.repository)
    except GovctlError as err:
        return None, f"{skipped}: {where} unreadable", [str(err)]
    if size is None:
        return None, f"{skipped}: {where} not found", []
    return size, f"Artifact Registry repository {where} holds {_size(size)} today", []


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


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
