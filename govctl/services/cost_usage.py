"""What `govctl cost` reads to price the whole pipeline: the schedule in force, whether the job
is deployed, how long its runs take (cold runs left out), the bucket (from the job's summary,
never a whole-bucket listing), the image repository and the search index.

Each reader returns its figure, the sentence the estimate's assumptions say about it, and
warnings; none raises for a part it cannot read (the part is then "not counted", said so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from govctl import threads, validate
from govctl.config import Config
from govctl.errors import GovctlError, NotFound
from govctl.gcp.billing import Prices
from govctl.services.cost import MEDIAN_OF, Run, SearchUsage, median_task_seconds, recent
from govctl.services.digests import Digests

RUNS_PREFIX = "_runs/"
STATE_PREFIX = "_state/"
WINDOW = timedelta(days=30)


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- the schedule and the job ---------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleInForce:
    cron: str
    time_zone: str
    note: str  # where the schedule came from, and how it differs from govctl.toml
    paused: bool = False


def schedule(cfg: Config, prices: Prices, warn: list[str]) -> ScheduleInForce:
    """The live scheduler job's cron when there is one (what actually runs), else the
    settings'; a live schedule that differs from govctl.toml is said, with how to reconcile."""
    from govctl.gcp import scheduler

    wanted = ScheduleInForce(cfg.schedule.cron, cfg.schedule.time_zone, "govctl.toml")
    if cfg.project is None or not prices.reachable:
        return wanted
    try:
        live = scheduler.get(cfg.schedule_path)
    except GovctlError as err:
        warn.append(f"the live schedule is unreadable, priced from govctl.toml: {err}")
        return wanted
    if live is None:
        return ScheduleInForce(wanted.cron, wanted.time_zone, "govctl.toml (not deployed)")
    paused = live.state == "PAUSED"
    if (live.cron, live.time_zone) == (wanted.cron, wanted.time_zone):
        return ScheduleInForce(live.cron, live.time_zone, "the live schedule", paused)
    note = (f"the live schedule, which differs from govctl.toml's '{wanted.cron}' "
            f"({wanted.time_zone}): `govctl deploy` applies govctl.toml")  # fmt: skip
    return ScheduleInForce(live.cron, live.time_zone, note, paused)


def deployed(cfg: Config, prices: Prices, warn: list[str]) -> bool | None:
    """Whether the job exists; None when that cannot be read (or no project is set)."""
    from govctl.gcp import jobs

    if cfg.project is None or not prices.reachable:
        return None
    try:
        return jobs.get_job(cfg.job_path) is not None
    except GovctlError as err:
        warn.append(str(err))
        return None


# -- run time --------------------------------------------------------------------------------


def is_cold(reports: list[dict[str, Any]]) -> bool:
    """A cold run digests most of its shard anew (a first run, or one after the digest
    settings changed): more repositories to do than unchanged. Without reports (expired, or
    never written), a run counts as warm."""
    from govctl.services import reports as run_reports

    totals = run_reports.totals(reports)
    return bool(reports) and totals.to_do > totals.unchanged


def split_cold(cfg: Config, runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(warm, cold) by each execution's run reports, read concurrently."""
    from govctl.services import reports as run_reports

    if not runs:
        return [], []

    def cold(run: Run) -> bool:
        try:
            return is_cold(run_reports.read(cfg.bucket, run.name, cfg.project))
        except GovctlError:
            return False

    with threads.pool(min(8, len(runs)), "cost-cold") as pool:
        flags = threads.map_all(pool, cold, runs)
    return ([r for r, c in zip(runs, flags, strict=True) if not c],
            [r for r, c in zip(runs, flags, strict=True) if c])  # fmt: skip


@dataclass(frozen=True)
class RunTime:
    seconds: float
    note: str
    warnings: list[str] = field(default_factory=list)


def _measured(cfg: Config, include_cold: bool) -> tuple[float | None, str]:
    """The median of recent successful runs (cold ones left out unless asked), and how it was
    taken; (None, why not) when there is none."""
    good = recent(cfg, 100, succeeded=MEDIAN_OF)
    if not good:
        return None, "no successful execution yet"
    used, cold = (good, []) if include_cold else split_cold(cfg, good)
    said = ""
    if cold and used:
        said = (f", leaving out {len(cold)} cold run(s) that digested most repositories anew "
                "(--include-cold counts them)")  # fmt: skip
    elif cold:
        used = cold
        said = ": only cold runs so far (every repository digested anew); a daily run that "\
               "finds most repositories unchanged is much shorter"  # fmt: skip
    median = median_task_seconds(used)
    if median is None:
        return None, "no task run time recorded"
    return median, (f"the median of the tasks of the last {len(used)} successful "
                    f"execution(s){said}")  # fmt: skip


def run_time(
    cfg: Config, duration: timedelta | None, include_cold: bool, prices: Prices
) -> RunTime:
    """One task's run time, and what to say about where it came from."""
    if duration is not None:
        seconds = duration.total_seconds()
        return RunTime(seconds, f"run time {validate.format_duration(seconds)} per task "
                                "(--duration)")  # fmt: skip
    median, why, warns = None, "no project set", []
    if not prices.reachable:
        why = "Google Cloud unreachable"
    elif cfg.project is not None:
        try:
            median, why = _measured(cfg, include_cold)
        except NotFound:
            why = "the job is not deployed"
        except GovctlError as err:
            why = "executions unreadable"
            warns.append(str(err))
    if median is not None:
        text = f"run time {validate.format_duration(median)} per task: {why}"
        return RunTime(median, text, warns)
    seconds = cfg.job.task_timeout.total_seconds()
    text = (f"run time {validate.format_duration(seconds)} per task: the task timeout ({why}; "
            "a real run is usually much shorter)")  # fmt: skip
    return RunTime(seconds, text, warns)


# -- the bucket ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketUsage:
    bytes: int  # everything: digests, run files, state
    digest_bytes: int
    growth_bytes: int | None  # added a month by run files (None: unknown)
    notes: list[str]


def _runs_growth(project: str, bucket: str, now: datetime) -> tuple[int, int, int, str]:
    """(run file bytes, state bytes, bytes a month, what to say): two prefix listings and
    the lifecycle rule."""
    from govctl.gcp import usage
    from govctl.services import retention

    runs = usage.prefix_usage(project, bucket, RUNS_PREFIX, now - WINDOW)
    state = usage.prefix_usage(project, bucket, STATE_PREFIX, now - WINDOW)
    ruled = retention.check_rule(project, bucket)
    if ruled is not None and ruled.ok:
        return runs.bytes, state.bytes, 0, (
            f"run reports and feed snapshots ({RUNS_PREFIX}): {size_text(runs.bytes)}, held "
            f"there by the bucket's lifecycle rule ({size_text(runs.bytes_since)} written in "
            "the last 30 days)")  # fmt: skip
    return runs.bytes, state.bytes, runs.bytes_since, (
        f"run reports and feed snapshots ({RUNS_PREFIX}): {size_text(runs.bytes)}, "
        f"{size_text(runs.bytes_since)} more every 30 days: no lifecycle rule expires them "
        "(`govctl setup` adds one)")  # fmt: skip


def bucket(
    cfg: Config,
    prices: Prices,
    now: datetime,
    held: Callable[[], Digests | None] | None = None,
) -> tuple[BucketUsage | None, str, list[str]]:
    """The bucket's size (digests from the job's summary), its growth, what to say, warnings.

    ``held``: the digests as the caller read them already (status), so they are read once.
    """
    from govctl.services import digests as digest_reader

    if cfg.project is None:
        return None, "bucket storage not counted: no project set", []
    if not prices.reachable:
        return None, "bucket storage not counted: Google Cloud unreachable", []
    try:
        found = held() if held is not None else digest_reader.read(cfg.project, cfg.bucket)
        if found is None:
            return None, f"bucket gs://{cfg.bucket} not found: storage not counted", []
        runs, state, growth, runs_note = _runs_growth(cfg.project, cfg.bucket, now)
    except GovctlError as err:
        return None, f"bucket gs://{cfg.bucket} unreadable: storage not counted", [str(err)]
    total = found.bytes + runs + state
    where = "the job's summary" if found.source == digest_reader.SUMMARY else "a listing"
    notes = [f"bucket gs://{cfg.bucket} holds {size_text(total)} today: {found.count:,} "
             f"digests of {size_text(found.bytes)} (from {where}), run files and "
             "state"]  # fmt: skip
    notes += [found.note] if found.note else []
    notes.append(runs_note)
    notes.append("the digests' own growth is not known (the summary keeps totals, not their "
                 "history): a repository added to the feed adds its digest")  # fmt: skip
    return BucketUsage(total, found.bytes, growth, notes), notes[0], []


# -- the image repository and the search index -----------------------------------------------


def registry(cfg: Config, prices: Prices) -> tuple[int | None, str, list[str]]:
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
    return size, f"Artifact Registry repository {where} holds {size_text(size)} today", []


def search(
    cfg: Config, prices: Prices, digest_bytes: int | None, queries: int
) -> tuple[SearchUsage | None, str, list[str]]:
    """What the Vertex AI Search data store holds and is asked, or why it is not counted."""
    from govctl.gcp import index

    name = f"data store {cfg.index.data_store} ({cfg.index.location})"
    if cfg.project is None or not prices.reachable:
        return None, "Vertex AI Search not counted: no project set, or Google Cloud unreachable", []
    try:
        from govctl.services.index import data_store_path

        found = index.get_data_store(data_store_path(cfg))
    except GovctlError as err:
        return None, f"Vertex AI Search not counted: {name} unreadable", [str(err)]
    if found is None:
        return None, (f"Vertex AI Search not counted: no {name} (`govctl setup --with-index` "
                      "creates it)"), []  # fmt: skip
    size = digest_bytes or 0
    return SearchUsage(size, queries), (
        f"Vertex AI Search {name}: index about the digests' size ({size_text(size)}; each "
        f"document's text, at most 2.5 MB), {queries:,} queries a month "
        "(--queries-per-month)"), []  # fmt: skip
