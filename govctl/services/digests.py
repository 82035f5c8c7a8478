"""What the bucket holds, for `status`, `cost` and `doctor`: read from the job's summary
(``_state/summary.json``, one GET), not by listing the bucket.

A bucket of 20,000 digests takes 20+ listing requests (1,000 objects a page) and seconds to
list; the summary the job writes at the end of every task says the same in one small object
(docs/ingestion.md, "The summary object"). Only when there is no summary yet (no run has ended
since the job learnt to write it) or its schema is one govctl does not know is the bucket
listed, and the answer says so (:attr:`Digests.note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from govctl.gcp import buckets, summary, usage
from govctl.gcp.summary import Summary

SUMMARY = "summary"
LISTING = "listing"


@dataclass(frozen=True)
class Digests:
    """The digests (``owner/name.md``) of the bucket, and where the figures come from."""

    bucket: str
    location: str | None
    count: int
    bytes: int
    oldest: datetime | None  # processedAt
    newest: datetime | None
    source: str  # SUMMARY or LISTING
    exact: bool  # False: the summary mixes shards of two runs (one still running, or killed)
    note: str | None = None  # what to tell the operator about the figures
    summary: Summary | None = None  # as read, for the other sections (last run, failures)


def _from_summary(name: str, location: str | None, found: Summary) -> Digests | None:
    totals = found.digests
    if totals is None:
        return None
    note = None
    if not totals.exact:
        note = (
            f"approximate: {totals.shards} of {totals.task_count} shards, not all from one run "
            "(a run still going, or a task that ended without writing)"
        )
    return Digests(name, location, totals.count, totals.bytes, totals.oldest_processed_at,
                   totals.newest_processed_at, SUMMARY, totals.exact, note, found)  # fmt: skip


def read(project: str, bucket: str) -> Digests | None:
    """The bucket's digests; None when the bucket does not exist. Two small reads when the
    job's summary is there; otherwise a listing of the whole bucket, said in ``note``."""
    found_bucket = buckets.get(bucket, project)
    if found_bucket is None:
        return None
    location = found_bucket.location or None
    found, why = summary.read_or_why(project, bucket)
    from_summary = _from_summary(bucket, location, found) if found is not None else None
    if from_summary is not None:
        return from_summary
    stats = usage.digest_stats(project, bucket)
    if stats is None:  # deleted meanwhile
        return None
    why = why or "the job summary has no digest totals yet"
    note = f"{why} ({summary.SUMMARY_PATH}): counted by listing the bucket"
    return Digests(bucket, location, stats.digests, stats.bytes, stats.oldest, stats.newest,
                   LISTING, True, note, found)  # fmt: skip
