"""`govctl logs`: the Cloud Logging filter built from the settings, reading and following.

The operator never writes a filter: it is made from the job (or the scheduler job), the
execution, the severity, the time range and a text, and ``--show-filter`` prints it for
the console or ``gcloud logging read``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from govctl.gcp import logs
from govctl.gcp.logs import LogEntry as LogEntry
from govctl.gcp.logs import Suppressed

EXECUTION_LABEL = logs.EXECUTION_LABEL
FOLLOW_CHECK_S = 5.0  # how often `logs -f --execution` asks whether the execution ended
GAP_MARGIN = timedelta(seconds=5)  # how far back a reconnect re-reads
GAP_LIMIT = 100_000  # entries a reconnect reads back (pages of 1,000)


def quote(text: str) -> str:
    """A Logging query string literal (its escapes are JSON's)."""
    return json.dumps(text, ensure_ascii=False)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Query:
    region: str
    job: str
    schedule: str = ""
    execution: str | None = None
    min_severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    grep: str | None = None
    scheduler: bool = False


def job_filter(region: str, job: str) -> str:
    return (
        f'resource.type="cloud_run_job" AND resource.labels.job_name={quote(job)} '
        f"AND resource.labels.location={quote(region)}"
    )


def execution_filter(region: str, job: str, execution: str) -> str:
    return f"{job_filter(region, job)} AND labels.{quote(EXECUTION_LABEL)}={quote(execution)}"


def build_filter(query: Query) -> str:
    if query.scheduler:
        parts = [
            'resource.type="cloud_scheduler_job"',
            f"resource.labels.job_id={quote(query.schedule)}",
            f"resource.labels.location={quote(query.region)}",
        ]
    elif query.execution:
        parts = [execution_filter(query.region, query.job, query.execution)]
    else:
        parts = [job_filter(query.region, query.job)]
    if query.min_severity:
        parts.append(f"severity>={query.min_severity}")
    if query.since:
        parts.append(f'timestamp>="{rfc3339(query.since)}"')
    if query.until:
        parts.append(f'timestamp<="{rfc3339(query.until)}"')
    if query.grep:
        parts.append(quote(query.grep))
    return " AND ".join(parts)


def entry_dict(entry: LogEntry) -> dict[str, object]:
    """A log entry as `logs --json` (and `run --json`'s task errors) print it."""
    return {
        "timestamp": entry.timestamp,
        "severity": entry.severity,
        "message": entry.message,
        "execution": entry.execution,
        "task_index": entry.task_index,
        "task_attempt": entry.attempt,
        "fields": entry.fields,
        "insert_id": entry.insert_id,
        "log_name": entry.log_name,
        "resource": {"type": entry.resource_type, "labels": entry.resource_labels},
        "labels": entry.labels,
    }


def read(project: str, filter_: str, limit: int) -> list[LogEntry]:
    """The newest ``limit`` entries, oldest first (newest last, as a terminal reads)."""
    return list(reversed(logs.list_entries(project, filter_, limit=limit)))


@dataclass(frozen=True)
class Notice:
    """Something to tell the operator while following (a reconnect, suppressed entries)."""

    message: str


class _Seen:
    """The entries already given (by log name, insert id and timestamp), and the newest
    timestamp among them: where a reconnect reads back from."""

    def __init__(self, since: datetime) -> None:
        self.last = since
        self._keys: dict[tuple[str, str, datetime], None] = {}

    def fresh(self, entries: list[LogEntry]) -> Iterator[LogEntry]:
        for entry in entries:
            if entry.key in self._keys:
                continue
            self._keys[entry.key] = None
            self.last = max(self.last, entry.timestamp)
            yield entry
        if len(self._keys) > 20_000:  # keep what an overlap can repeat: the last few seconds
            horizon = self.last - timedelta(minutes=2)
            for key in [k for k in self._keys if k[2] < horizon]:
                del self._keys[key]


class _Stream:
    """One follow: a tail reconnected with backoff when it drops, the gaps read back."""

    def __init__(
        self,
        project: str,
        filter_: str,
        seen: _Seen,
        stop: threading.Event,
        tail_factory: Callable[[str, str], logs.Tail],
    ) -> None:
        self.project, self.filter, self.seen, self.stop = project, filter_, seen, stop
        self.tail_factory = tail_factory
        self.tail = tail_factory(project, filter_).start()
        self.delay = 1.0

    def gap(self) -> Iterator[LogEntry]:
        """What was written since a little before the last entry seen: tasks' clocks and log
        delivery are not in lockstep, so an entry stamped slightly earlier can arrive
        later. Overlaps are dropped."""
        where = f'{self.filter} AND timestamp>="{rfc3339(self.seen.last - GAP_MARGIN)}"'
        found = logs.list_entries(self.project, where, limit=GAP_LIMIT, newest_first=False)
        return self.seen.fresh(found)

    def arrived(self) -> Iterator[LogEntry | Notice]:
        """What the tail delivered within a quarter of a second, in time order."""
        batch: list[LogEntry] = []
        for item in self.tail.get(timeout=0.25):
            if isinstance(item, Suppressed):
                yield Notice(f"{item.count} entries suppressed by Cloud Logging ({item.reason})")
            else:
                batch.append(item)
        yield from self.seen.fresh(sorted(batch, key=lambda e: e.timestamp))

    def reconnect(self) -> Generator[LogEntry | Notice, None, bool]:
        """After the stream dropped: wait (doubling, up to 30 s), open a new tail, read the
        gap; whether it is connected again (not when ``stop`` was set, or it failed)."""
        yield Notice(f"log stream interrupted ({self.tail.ended or 'closed'}); reconnecting")
        self.tail.close()
        if self.stop.wait(self.delay):
            return False
        self.delay = min(self.delay * 2, 30.0)
        try:
            self.tail = self.tail_factory(self.project, self.filter).start()
        except Exception as err:  # UNAVAILABLE again: back off and retry
            yield Notice(f"cannot reconnect yet: {err}")
            return False
        self.delay = 1.0
        yield from self.gap()
        return True

    @property
    def dropped(self) -> bool:
        return self.tail.ended is not None and not self.tail.alive


def follow(
    project: str,
    filter_: str,
    *,
    backlog: int = 0,
    since: datetime | None = None,
    ended: Callable[[], bool] | None = None,
    check_every: float = 5.0,
    stop: threading.Event | None = None,
    tail_factory: Callable[[str, str], logs.Tail] = logs.Tail,
) -> Iterator[LogEntry | Notice]:
    """Entries as they are written, each once, until ``stop``, or ``ended()`` says the
    execution being followed is over.

    First the newest ``backlog`` entries (or all since ``since``), then the tail. The tail
    is opened BEFORE the backlog is read so nothing falls between them; after a dropped
    stream, a new one is opened and the gap is read with a list from the last timestamp
    seen. Duplicates (the overlaps) are recognised by log name, insert id and timestamp.
    """
    stop = stop or threading.Event()
    seen = _Seen(since or datetime.now(UTC) - timedelta(seconds=2))
    stream = _Stream(project, filter_, seen, stop, tail_factory)
    try:
        if since is not None:
            yield from stream.gap()
        elif backlog:
            yield from seen.fresh(read(project, filter_, backlog))
        next_check = time.monotonic() + check_every
        while not stop.is_set():
            yield from stream.arrived()
            if stream.dropped and not (yield from stream.reconnect()):
                continue
            if ended is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + check_every
                if ended():
                    yield from stream.gap()  # what was written just before the end
                    return
    finally:
        stream.tail.close()


# What a failed scheduler attempt's status means for this deployment (GCP-FACTS.md).
SCHEDULER_STATUS = {
    "PERMISSION_DENIED": "the scheduler's service account lacks roles/run.invoker on the job "
    "(fix: govctl deploy, which binds it)",
    "UNAUTHENTICATED": "the call carried no usable token: the scheduler must send an OAuth "
    "token (not OIDC) of the service account, scope cloud-platform",
    "NOT_FOUND": "the job it calls does not exist (fix: govctl deploy)",
    "INVALID_ARGUMENT": "Cloud Run refused the request (check the target URI and body)",
    "UNAVAILABLE": "the target did not answer",
    "DEADLINE_EXCEEDED": "the target did not answer within the attempt deadline",
}


@dataclass(frozen=True)
class Attempt:
    time: datetime  # when it fired (its AttemptStarted entry)
    status: str  # in words
    code: str | None  # OK, PERMISSION_DENIED, …; None while unfinished
    execution: str | None  # the execution a successful attempt started
    debug_info: str = ""


def scheduler_attempts(entries: list[LogEntry], recent: list[Any]) -> list[Attempt]:
    """One row per attempt (AttemptStarted + AttemptFinished entries, oldest first), the
    status in words; a successful attempt is matched with the execution created then."""
    result: list[Attempt] = []
    open_attempt = False
    for entry in entries:
        if str(entry.fields.get("@type", "")).endswith("AttemptStarted"):
            result.append(Attempt(entry.timestamp, "running", None, None))
            open_attempt = True
            continue
        code = str(entry.fields.get("status") or "OK")
        if code == "OK":
            status = "succeeded"
        else:
            status = f"{code}: {SCHEDULER_STATUS.get(code, 'the attempt failed')}"
        fired = result.pop().time if open_attempt and result else entry.timestamp
        open_attempt = False
        result.append(
            Attempt(
                fired,
                status,
                code,
                _started_by(entry.timestamp, fired, recent) if code == "OK" else None,
                str(entry.fields.get("debugInfo", "")),
            )
        )
    return result


def _started_by(finished: datetime, fired: datetime, recent: list[Any]) -> str | None:
    """The execution created while the attempt ran (Cloud Scheduler logs no name)."""
    low, high = fired - timedelta(seconds=1), finished + timedelta(seconds=5)
    window = [e for e in recent if e.created and low <= e.created <= high]
    return min(window, key=lambda e: e.created).name if window else None
