"""The run report each task writes to ``_runs/{execution}/task-{index}.json`` in the sink."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingestion.clock import rfc3339


def execution_id(environ: dict[str, str]) -> str:
    """Cloud Run's execution name; outside Cloud Run a UTC timestamp and a random suffix, so two
    runs started in the same second never share a run report (the timestamp keeps them sorted)."""
    return environ.get("CLOUD_RUN_EXECUTION") or (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)
    )


@dataclass
class Failure:
    repo: str
    reason: str
    detail: str = ""
    stage: str = ""
    pushed_at: str = ""
    # Set by RunReport.record_failure from the failures of earlier runs (ingestion.failures).
    persistent: bool = False
    first_failed: str = ""


@dataclass
class RunReport:
    """Counts and timings of one task, safe to update from the pipeline's threads.

    ``attempted`` repositories are those we tried to ingest (processed + failed); those
    cancelled by SIGTERM before finishing are neither, and are counted as ``interrupted``.
    """

    execution: str
    task_index: int
    task_count: int
    settings: dict[str, Any] = field(default_factory=dict)
    feed_entries: int = 0
    in_shard: int = 0
    to_do: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rewritten: int = 0
    metadata_refreshed: int = 0
    interrupted: int = 0
    failures: list[Failure] = field(default_factory=list)
    # Earlier runs' failures of this shard's repositories (ingestion.failures records).
    known_failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    backing_off: list[str] = field(default_factory=list)  # keys not retried this run
    succeeded: list[str] = field(default_factory=list)
    # What this task wrote: ``owner/name`` -> (digest size, processedAt), for the summary.
    written: dict[str, tuple[int, str]] = field(default_factory=dict)
    # The feed this task sharded: its snapshot (ingestion.snapshot) and where it came from.
    feed: dict[str, Any] = field(default_factory=dict)
    bytes_written: int = 0
    digest_bytes: int = 0
    files_digested: int = 0
    capped: int = 0  # digests that left files out to stay within --max-total-size
    stage_seconds: dict[str, float] = field(default_factory=dict)
    plan_seconds: float = 0.0
    stopped_by: str = ""
    fatal: str = ""
    started_at: str = field(default_factory=lambda: rfc3339(datetime.now(UTC)))
    _t0: float = field(default_factory=time.monotonic, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def processed(self) -> int:
        return self.rewritten + self.metadata_refreshed

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def failed_new(self) -> int:
        return sum(not f.persistent for f in self.failures)

    @property
    def attempted(self) -> int:
        return self.processed + self.failed

    @property
    def done(self) -> int:
        return self.processed + self.failed + self.interrupted

    def failure_ratio(self) -> float:
        """New failures over attempts: a repository failing again for the reason it failed
        for before is already known to the operator, and does not turn the run red."""
        return self.failed_new / self.attempted if self.attempted else 0.0

    def add_stage(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def record_written(
        self,
        *,
        rewritten: bool,
        size: int,
        files: int,
        capped: bool = False,
        repo: str = "",
        processed_at: str = "",
    ) -> None:
        with self._lock:
            if repo:
                self.succeeded.append(repo)
                self.written[repo] = (size, processed_at)
            self.capped += capped
            if rewritten:
                self.rewritten += 1
                self.bytes_written += size
            else:
                self.metadata_refreshed += 1
            self.digest_bytes += size
            self.files_digested += files

    def record_failure(self, failure: Failure) -> Failure:
        """Count ``failure``, marked persistent when an earlier run failed it the same way."""
        with self._lock:
            known = self.known_failures.get(failure.repo)
            failure.persistent = known is not None and known.get("reason") == failure.reason
            failure.first_failed = (
                str(known["first_failed"]) if known else rfc3339(datetime.now(UTC))
            )
            self.failures.append(failure)
        return failure

    def record_interrupted(self) -> None:
        with self._lock:
            self.interrupted += 1

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "feed_entries": self.feed_entries,
                "in_shard": self.in_shard,
                "to_do": self.to_do,
                "processed": self.processed,
                "rewritten": self.rewritten,
                "metadata_refreshed": self.metadata_refreshed,
                "unchanged": self.unchanged,
                "failed": self.failed,
                "failed_new": self.failed_new,
                "failed_persistent": self.failed - self.failed_new,
                "backing_off": len(self.backing_off),
                "interrupted": self.interrupted,
                "capped": self.capped,
                "duplicates": self.duplicates,
                "rejected": sum(self.rejected.values()),
                "rejected_by_reason": dict(sorted(self.rejected.items())),
            }

    def exit_code(self, max_failure_ratio: float) -> int:
        if self.fatal or self.stopped_by:
            return 1
        return 0 if self.failure_ratio() <= max_failure_ratio else 1

    def _persistent(self) -> list[dict[str, Any]]:
        """Repositories failing since an earlier run: failed again, or not retried yet."""
        rows = []
        for f in self.failures:
            if f.persistent:
                known = self.known_failures[f.repo]
                rows.append(_row(f.repo, known, retried=True))
        for key in self.backing_off:
            rows.append(_row(key, self.known_failures[key], retried=False))
        return sorted(rows, key=lambda r: (r["first_failed"], r["repo"]))

    def to_dict(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._t0
        counts = self.counts()
        with self._lock:
            return {
                "execution": self.execution,
                "task_index": self.task_index,
                "task_count": self.task_count,
                "started_at": self.started_at,
                "finished_at": rfc3339(datetime.now(UTC)),
                "stopped_by": self.stopped_by or None,
                "fatal": self.fatal or None,
                "counts": counts,
                "failure_ratio": round(self.failure_ratio(), 4),
                "failures": [
                    {
                        "repo": f.repo,
                        "reason": f.reason,
                        "stage": f.stage,
                        "detail": f.detail,
                        "persistent": f.persistent,
                        "first_failed": f.first_failed,
                    }
                    for f in self.failures
                ],
                "persistent_failures": self._persistent(),
                "durations_s": {"total": round(elapsed, 3), "plan": round(self.plan_seconds, 3)},
                # Summed over repositories processed in parallel, so they can exceed "total".
                "stage_seconds_summed": {
                    k: round(v, 3) for k, v in sorted(self.stage_seconds.items())
                },
                "rate_per_s": round(counts["processed"] / elapsed, 3) if elapsed > 0 else 0.0,
                "bytes": {
                    "written": self.bytes_written,
                    "digests": self.digest_bytes,
                },
                "files_digested": self.files_digested,
                "feed": self.feed or None,
                "settings": self.settings,
            }


def _row(repo: str, known: dict[str, Any], *, retried: bool) -> dict[str, Any]:
    return {
        "repo": repo,
        "reason": known.get("reason", ""),
        "first_failed": known.get("first_failed", ""),
        "failures": known.get("failures", 0) + (1 if retried else 0),
        "retried": retried,
        "retry_after": None if retried else known.get("retry_after"),
    }
