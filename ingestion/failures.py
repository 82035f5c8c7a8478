"""Repositories that keep failing: remembered across runs, retried with backoff.

The sink holds one JSON object, ``_state/failures.json``: ``{"owner/name": record}`` for every
repository whose last attempt failed. A task reads it before planning and updates the entries
of its own shard at the end (a read-modify-write with a generation precondition, repeated when
another task wrote in between, so concurrent tasks never lose each other's entries).

The rule (docs/ingestion.md, "Persistent failures"):

* A repository that failed is retried after ``BACKOFF_BASE * 2**(failures - 1)``, at most
  ``BACKOFF_MAX`` — the next daily run after one failure, then every other day, every fourth…
  — or at once when the feed's ``pushedAt`` changed or with ``--force``. Until then it is
  *backing off*: not cloned, listed in the run report and logged.
* A failure is *persistent* when the repository already failed in an earlier run for the same
  reason. Persistent failures do not count towards ``--max-failure-ratio``; a new failure, or
  a known one with a new reason (an outage turns ``not_found`` into ``unreachable``), does. So
  a run whose only failures are long-broken repositories exits 0, and one where every clone
  fails still exits 1.
* A repository that succeeds, is unchanged, or has left the feed is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ingestion.clock import parse_time, rfc3339
from ingestion.feed import Repo

BACKOFF_BASE = timedelta(hours=20)  # under a day: the next daily run retries
BACKOFF_MAX = timedelta(days=30)

Record = dict[str, Any]


def backing_off(record: Mapping[str, Any], repo: Repo, now: datetime) -> bool:
    """Whether ``repo``, which failed before, waits for a later run."""
    if record.get("pushedAt", "") != repo.pushed_at:
        return False  # a push may have fixed it
    try:
        return parse_time(str(record["retry_after"])) > now
    except (KeyError, ValueError):
        return False


def failed_again(
    previous: Mapping[str, Any] | None,
    *,
    reason: str,
    detail: str,
    stage: str,
    pushed_at: str,
    failed_at: str,
    now: datetime,
) -> Record:
    """The record after one more failure (``previous`` None: the first one)."""
    count = int(previous.get("failures", 0)) + 1 if previous is not None else 1
    first = str(previous["first_failed"]) if previous is not None else failed_at
    delay = min(BACKOFF_BASE * 2 ** (count - 1), BACKOFF_MAX)
    return {
        "reason": reason,
        "detail": detail[:500],
        "stage": stage,
        "first_failed": first,
        "last_failed": rfc3339(now),
        "failures": count,
        "retry_after": rfc3339(now + delay),
        "pushedAt": pushed_at,
    }


def merged(
    current: Any,
    *,
    failed: Mapping[str, Record],
    cleared: Iterable[str],
    feed_keys: set[str] | None,
) -> dict[str, Record]:
    """``current`` (the stored object, None when absent) with this task's outcomes applied.

    ``feed_keys`` (None with ``--limit``): the whole feed, to forget repositories that left it.
    """
    state: dict[str, Record] = dict(current) if isinstance(current, dict) else {}
    for key in cleared:
        state.pop(key, None)
    state.update(failed)
    if feed_keys is not None:
        state = {k: v for k, v in state.items() if k in feed_keys}
    return dict(sorted(state.items()))
