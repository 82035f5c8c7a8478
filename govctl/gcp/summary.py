"""``_state/summary.json``: the one small object the job keeps for operator commands.

``status``, ``cost``, ``doctor`` and ``index status`` need the number and size of the digests,
the last run, the failures and the search index's watermark. Listing a bucket of 20,000
digests costs 20+ requests and seconds; this object costs one GET. The job writes it at the end
of every task; ``govctl index sync`` owns its ``index`` section (:func:`update_index`).

The schema is docs/ingestion.md's "The summary object". govctl may not import ``ingestion``
(the layers make lint checks), so this is a reader of its own written against that table;
``tests/govctl/test_summary.py`` checks it against the job's writer and reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from govctl.gcp import clients
from govctl.gcp.errors import translate

SUMMARY_PATH = "_state/summary.json"
SCHEMA = 1
# A read-modify-write loses to a task writing in between at most this often before giving up.
_ATTEMPTS = 8


@dataclass(frozen=True)
class DigestTotals:
    """The digests in the bucket, summed over the job's shards."""

    count: int
    bytes: int
    oldest_processed_at: datetime | None
    newest_processed_at: datetime | None
    task_count: int
    shards: int  # shards present, of task_count
    # Every shard of the task count is there and written by one execution: the sum is the
    # bucket's, not a mix of two runs.
    exact: bool


@dataclass(frozen=True)
class LastRun:
    execution: str
    task_count: int
    tasks_reported: int
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str  # succeeded | failed | incomplete
    counts: Mapping[str, int]


@dataclass(frozen=True)
class Failures:
    count: int
    by_reason: Mapping[str, int]


@dataclass(frozen=True)
class Summary:
    updated_at: datetime | None
    digests: DigestTotals | None
    last_run: LastRun | None
    failures: Failures | None
    index: Mapping[str, Any]  # govctl index sync's own section, as stored
    data: Mapping[str, Any] = field(repr=False)

    @property
    def index_watermark(self) -> datetime | None:
        return _time(self.index.get("watermark"))

    def pending_for_index(self) -> int | None:
        """Digests processed after the index's watermark; None when the summary cannot say
        (then the bucket must be listed)."""
        watermark = self.index.get("watermark")
        totals = self.digests
        mark = _time(watermark)
        if mark is None or totals is None or not totals.exact:
            return None
        if totals.newest_processed_at is not None and mark >= totals.newest_processed_at:
            return 0
        since = [s.get("since_index") for s in _shards(self.data)]
        if all(isinstance(s, dict) and s.get("watermark") == watermark for s in since):
            return sum(_int(s.get("count")) for s in since if isinstance(s, dict))
        return None


def parse(value: Any) -> Summary | None:
    """A summary of the schema govctl knows, else None (absent, foreign or newer)."""
    if not isinstance(value, dict) or value.get("schema") != SCHEMA:
        return None
    index = value.get("index")
    return Summary(
        updated_at=_time(value.get("updated_at")),
        digests=_totals(value),
        last_run=_last_run(value.get("last_run")),
        failures=_failures(value.get("failures")),
        index=index if isinstance(index, dict) else {},
        data=value,
    )


def read(project: str | None, bucket: str) -> Summary | None:
    """The bucket's summary (one GET); None when there is none or its schema is unknown."""
    value, _ = _get(project, bucket)
    return parse(value)


def update_index(
    project: str | None, bucket: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> Summary | None:
    """Replace the ``index`` section with ``change(current index section)``, keeping every
    other section as the job wrote it: a read-modify-write under a generation precondition,
    repeated when a task of the job wrote in between (it may, at the end of any task)."""
    for _ in range(_ATTEMPTS):
        value, generation = _get(project, bucket)
        current: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
        index = current.get("index")
        current["index"] = change(dict(index) if isinstance(index, dict) else {})
        if "schema" not in current:
            current["schema"] = SCHEMA  # the first write, before any run of the job
        if _put(project, bucket, current, generation):
            return parse(current)
    raise RuntimeError(f"gs://{bucket}/{SUMMARY_PATH} kept changing under {_ATTEMPTS} writes")


# -- storage -------------------------------------------------------------------------------


def _where(bucket: str, role: str = "roles/storage.objectViewer") -> dict[str, str]:
    return {
        "not_found": f"the bucket {bucket} does not exist: create it (govctl setup)",
        "denied": f"this needs {role} on gs://{bucket}",
    }


def _get(project: str | None, bucket: str) -> tuple[Any, int]:
    """The stored JSON and its generation (0: no object, which a create-only write needs)."""
    from google.api_core.exceptions import NotFound

    with translate(f"read gs://{bucket}/{SUMMARY_PATH}", **_where(bucket)):
        blob = clients.storage_client(project).bucket(bucket).blob(SUMMARY_PATH)
        try:
            raw = blob.download_as_bytes()
        except NotFound:
            return None, 0
        try:
            return json.loads(raw), int(blob.generation or 0)
        except ValueError:
            return None, int(blob.generation or 0)  # foreign bytes: replaced on the next write


def _put(project: str | None, bucket: str, value: dict[str, Any], generation: int) -> bool:
    """Write ``value`` if the object is still at ``generation``; False when it is not."""
    from google.api_core.exceptions import PreconditionFailed

    data = json.dumps(value, indent=1, sort_keys=True).encode()
    with translate(
        f"write gs://{bucket}/{SUMMARY_PATH}", **_where(bucket, "roles/storage.objectUser")
    ):
        blob = clients.storage_client(project).bucket(bucket).blob(SUMMARY_PATH)
        try:
            blob.upload_from_string(
                data, content_type="application/json", if_generation_match=generation
            )
        except PreconditionFailed:
            return False
    return True


# -- the sections ----------------------------------------------------------------------------


def _shards(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    section = value.get("digests")
    shards = section.get("shards") if isinstance(section, dict) else None
    return [s for s in shards.values() if isinstance(s, dict)] if isinstance(shards, dict) else []


def _totals(value: Mapping[str, Any]) -> DigestTotals | None:
    section = value.get("digests")
    if not isinstance(section, dict) or not isinstance(section.get("shards"), dict):
        return None
    shards = _shards(value)
    task_count = _int(section.get("task_count"))
    oldest = [t for s in shards if (t := _time(s.get("oldest_processed_at")))]
    newest = [t for s in shards if (t := _time(s.get("newest_processed_at")))]
    keys = {str(i) for i in range(task_count)}
    return DigestTotals(
        count=sum(_int(s.get("count")) for s in shards),
        bytes=sum(_int(s.get("bytes")) for s in shards),
        oldest_processed_at=min(oldest, default=None),
        newest_processed_at=max(newest, default=None),
        task_count=task_count,
        shards=len(shards),
        exact=set(section["shards"]) == keys and len({s.get("execution") for s in shards}) == 1,
    )


def _last_run(run: Any) -> LastRun | None:
    if not isinstance(run, dict) or not isinstance(run.get("execution"), str):
        return None
    counts = run.get("counts")
    return LastRun(
        execution=run["execution"],
        task_count=_int(run.get("task_count")),
        tasks_reported=_int(run.get("tasks_reported")),
        started_at=_time(run.get("started_at")),
        finished_at=_time(run.get("finished_at")),
        outcome=str(run.get("outcome", "")),
        counts={str(k): _int(v) for k, v in counts.items()} if isinstance(counts, dict) else {},
    )


def _failures(section: Any) -> Failures | None:
    if not isinstance(section, dict):
        return None
    reasons = section.get("by_reason")
    return Failures(
        count=_int(section.get("count")),
        by_reason=(
            {str(k): _int(v) for k, v in reasons.items()} if isinstance(reasons, dict) else {}
        ),
    )


def _int(value: Any) -> int:
    """An integer field; 0 for anything else (a foreign or broken value must not stop a
    command)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
