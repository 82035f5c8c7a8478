"""``_state/summary.json``: what operator commands need, in one small object the job keeps.

``govctl status``, ``cost``, ``doctor`` and ``index status`` need the number and size of the
digests, the last run, the failures and the search index's watermark. Listing a bucket of
20,000 digests for that costs 20+ requests each time; this object costs one. Each task of the
job updates it at the end of its run with a read-modify-write under a generation precondition
(:meth:`ingestion.sinks.Sink.update_json`, repeated when another task wrote in between), and
keeps every section it does not own (``index``, written by ``govctl index sync``) as it found it.

The schema is documented in docs/ingestion.md ("The summary object"); govctl reads it with its
own code (it may not import ``ingestion``), so the two must stay in step: bump ``SCHEMA`` on any
incompatible change.

**Exact totals from concurrent tasks.** Each task knows its own shard exactly at its end: the
one listing it made before planning, plus what it wrote. So the digest totals are kept per
shard, keyed by the task index under the task count they belong to; readers sum the shards.
Task 0 also counts the digests of repositories outside the feed (no task owns them; nothing
writes them). When the task count changes, the first task of the new count drops the old
shards. The sum is exact for the whole bucket once every shard of the current task count has
been written by the same execution (:attr:`Totals.exact`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestion.clock import parse_time, utc_now
from ingestion.sinks import Sink, Stored
from ingestion.sinks.base import FAILURES_PATH, SUMMARY_PATH

SCHEMA = 1
# The counts of a task's report kept in the summary (the report has them all).
TASK_COUNTS = (
    "to_do", "processed", "rewritten", "metadata_refreshed", "unchanged", "failed",
    "failed_new", "backing_off", "interrupted", "capped", "rejected",
)  # fmt: skip


# -- what a task contributes -------------------------------------------------------------------


@dataclass(frozen=True)
class ShardFigures:
    """The digests of one shard after the task's run (and, for task 0, those outside the feed)."""

    count: int
    bytes: int
    outside_feed: int
    processed_at: tuple[str, ...]  # of every digest counted ("" when it has none)

    def as_dict(self, watermark: str | None) -> dict[str, Any]:
        known = sorted(p for p in self.processed_at if p)
        return {
            "count": self.count,
            "bytes": self.bytes,
            "outside_feed": self.outside_feed,
            "oldest_processed_at": known[0] if known else None,
            "newest_processed_at": known[-1] if known else None,
            "since_index": (
                None
                if watermark is None
                else {"watermark": watermark, "count": _newer(self.processed_at, watermark)}
            ),
        }


def shard_figures(
    stored: Mapping[str, Stored],
    shard: Collection[str],
    written: Mapping[str, tuple[int, str]],
    *,
    feed_keys: Collection[str] | None = None,
) -> ShardFigures:
    """``shard``'s digests: what the listing showed, replaced by what this task wrote.

    ``feed_keys`` (task 0 only): every repository of the feed, to count the digests of those
    outside it too."""
    sizes: list[int] = []
    times: list[str] = []
    for key in shard:
        if key in written:
            size, at = written[key]
        elif key in stored:
            size, at = stored[key].size, stored[key].metadata.get("processedAt", "")
        else:
            continue
        sizes.append(size)
        times.append(at)
    outside = 0
    if feed_keys is not None:
        for key, item in stored.items():
            if key not in feed_keys and key not in written:
                outside += 1
                sizes.append(item.size)
                times.append(item.metadata.get("processedAt", ""))
    return ShardFigures(len(sizes), sum(sizes), outside, tuple(times))


@dataclass(frozen=True)
class TaskResult:
    """One task's run, as the summary keeps it."""

    execution: str
    task_index: int
    task_count: int
    started_at: str
    finished_at: str
    exit_code: int
    stopped_by: str | None
    fatal: str | None
    counts: Mapping[str, Any]
    shard: ShardFigures | None  # None when the task stopped before listing the sink

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "stopped_by": self.stopped_by,
            "fatal": self.fatal,
            "counts": {k: self.counts.get(k, 0) for k in TASK_COUNTS},
        }


# -- the update (pure) -------------------------------------------------------------------------


def updated(current: Any, task: TaskResult, failures: Any, *, now: str) -> dict[str, Any]:
    """``current`` (the stored summary, None when absent) with ``task``'s run applied and the
    failures section recomputed from ``failures`` (the content of ``_state/failures.json``).
    Sections the job does not own are kept as they are."""
    new: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
    new["schema"] = SCHEMA
    new["updated_at"] = now
    index = new.get("index")
    watermark = index.get("watermark") if isinstance(index, dict) else None
    if task.shard is not None:
        new["digests"] = _with_shard(new.get("digests"), task, watermark)
    run = _with_task(new.get("last_run"), task)
    if run is not None:
        new["last_run"] = run
    new["failures"] = failures_section(failures)
    return new


def _with_shard(section: Any, task: TaskResult, watermark: Any) -> dict[str, Any]:
    assert task.shard is not None
    shards = section.get("shards") if isinstance(section, dict) else None
    same_count = isinstance(section, dict) and section.get("task_count") == task.task_count
    kept = dict(shards) if same_count and isinstance(shards, dict) else {}
    kept[str(task.task_index)] = {
        "execution": task.execution,
        "at": task.finished_at,
        **task.shard.as_dict(watermark if isinstance(watermark, str) else None),
    }
    return {"task_count": task.task_count, "shards": dict(sorted(kept.items(), key=_by_index))}


def _with_task(run: Any, task: TaskResult) -> dict[str, Any] | None:
    """The ``last_run`` section with this task in it; None when a newer execution is there
    already (an older one finishing late does not replace it)."""
    same = isinstance(run, dict) and run.get("execution") == task.execution
    if isinstance(run, dict) and not same and str(run.get("started_at", "")) > task.started_at:
        return None
    tasks = dict(run.get("tasks") or {}) if same and isinstance(run, dict) else {}
    tasks[str(task.task_index)] = task.as_dict()
    entries = [t for t in tasks.values() if isinstance(t, dict)]
    counts: Counter[str] = Counter()
    for t in entries:
        task_counts = t.get("counts")
        if isinstance(task_counts, dict):
            counts.update({k: _int(v) for k, v in task_counts.items()})
    codes = [t.get("exit_code") for t in entries]
    if any(code != 0 for code in codes):
        outcome = "failed"
    elif len(entries) >= task.task_count:
        outcome = "succeeded"
    else:
        outcome = "incomplete"
    return {
        "execution": task.execution,
        "task_count": task.task_count,
        "tasks_reported": len(entries),
        "started_at": min(str(t.get("started_at", "")) for t in entries),
        "finished_at": max(str(t.get("finished_at", "")) for t in entries),
        "outcome": outcome,
        "counts": {k: counts.get(k, 0) for k in TASK_COUNTS},
        "tasks": dict(sorted(tasks.items(), key=_by_index)),
    }


def failures_section(failures: Any) -> dict[str, Any]:
    """Count and reasons of the repositories whose last attempt failed."""
    records = (
        [r for r in failures.values() if isinstance(r, dict)] if isinstance(failures, dict) else []
    )
    reasons = Counter(str(r.get("reason", "")) for r in records)
    return {"count": len(records), "by_reason": dict(sorted(reasons.items()))}


def update_summary(sink: Sink, task: TaskResult) -> dict[str, Any]:
    """Apply ``task`` to the sink's summary (read-modify-write, retried on a conflict).

    The failures are read inside each attempt, after the summary: a task that wrote
    ``failures.json`` later than this read also writes the summary later, so the last writer's
    failures section is the latest."""

    def change(current: Any) -> dict[str, Any]:
        failures, _ = sink.read_json(FAILURES_PATH)
        return updated(current, task, failures, now=utc_now())

    result: dict[str, Any] = sink.update_json(SUMMARY_PATH, change)
    return result


# -- reading it ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The digests in the sink, summed over the shards."""

    count: int
    bytes: int
    oldest_processed_at: str | None
    newest_processed_at: str | None
    task_count: int
    shards: int  # shards present (of task_count)
    # Every shard of the task count is there and from one execution: the sum is the bucket's.
    exact: bool


@dataclass(frozen=True)
class Summary:
    data: dict[str, Any]

    def totals(self) -> Totals | None:
        section = self.data.get("digests")
        if not isinstance(section, dict) or not isinstance(section.get("shards"), dict):
            return None
        shards = [s for s in section["shards"].values() if isinstance(s, dict)]
        task_count = _int(section.get("task_count"))
        oldest = [str(s["oldest_processed_at"]) for s in shards if s.get("oldest_processed_at")]
        newest = [str(s["newest_processed_at"]) for s in shards if s.get("newest_processed_at")]
        keys = {str(i) for i in range(task_count)}
        return Totals(
            count=sum(_int(s.get("count")) for s in shards),
            bytes=sum(_int(s.get("bytes")) for s in shards),
            oldest_processed_at=min(oldest, default=None),
            newest_processed_at=max(newest, default=None),
            task_count=task_count,
            shards=len(shards),
            exact=set(section["shards"]) == keys and len({s.get("execution") for s in shards}) == 1,
        )

    def last_run(self) -> dict[str, Any] | None:
        run = self.data.get("last_run")
        return run if isinstance(run, dict) else None

    def failures(self) -> dict[str, Any] | None:
        section = self.data.get("failures")
        return section if isinstance(section, dict) else None

    def index(self) -> dict[str, Any] | None:
        section = self.data.get("index")
        return section if isinstance(section, dict) else None

    def pending_for_index(self) -> int | None:
        """Digests processed after the index's watermark; None when the summary cannot say
        (then list the bucket)."""
        index, totals = self.index(), self.totals()
        watermark = index.get("watermark") if index else None
        if not isinstance(watermark, str) or totals is None or not totals.exact:
            return None
        shards = [s for s in self.data["digests"]["shards"].values() if isinstance(s, dict)]
        if totals.newest_processed_at is not None and _after(watermark, totals.newest_processed_at):
            return 0
        since = [s.get("since_index") for s in shards]
        if all(isinstance(s, dict) and s.get("watermark") == watermark for s in since):
            return sum(_int(s.get("count")) for s in since if isinstance(s, dict))
        return None


def parse_summary(value: Any) -> Summary | None:
    """A summary of this schema, else None (absent, foreign or a newer schema)."""
    if not isinstance(value, dict) or value.get("schema") != SCHEMA:
        return None
    return Summary(value)


def read_summary(sink: Sink) -> Summary | None:
    value, _ = sink.read_json(SUMMARY_PATH)
    return parse_summary(value)


# -- helpers ---------------------------------------------------------------------------------


def _int(value: Any) -> int:
    """An integer field of a stored summary; 0 for anything else (a foreign or broken value
    must not stop a task at its end, nor a reader)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _by_index(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (int(key), key) if key.isdigit() else (1 << 30, key)


def _time(text: str) -> datetime | None:
    try:
        return parse_time(text)
    except ValueError:
        return None


def _after(a: str, b: str) -> bool:
    """Whether time ``a`` is at or after time ``b`` (False when either does not parse)."""
    ta, tb = _time(a), _time(b)
    return ta is not None and tb is not None and ta >= tb


def _newer(times: tuple[str, ...], watermark: str) -> int:
    """How many of ``times`` are after ``watermark``; a digest without a time counts (it may
    be newer)."""
    mark = _time(watermark)
    if mark is None:
        return len(times)
    return sum(1 for t in times if (at := _time(t)) is None or at > mark)
