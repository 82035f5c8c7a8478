"""The run reports the job's tasks write to the bucket, and their totals.

Where a report lives is known in ONE place, :func:`prefix` (the job writes
``_runs/{execution}/task-{index}.json``, see ``ingestion/report.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from govctl.gcp import blobs

REPORT_NAME = r"task-\d+\.json"  # under the prefix, next to the run's feed snapshot


def prefix(execution: str) -> str:
    """Where the tasks of ``execution`` write their reports."""
    return f"_runs/{execution}/"


def read(bucket: str, execution: str, project: str | None = None) -> list[dict[str, Any]]:
    """The reports of an execution's tasks, by task index (missing tasks are absent)."""
    found = blobs.read_json_under(bucket, prefix(execution), REPORT_NAME, project)
    reports = [r for r in found.values() if isinstance(r, dict)]
    return sorted(reports, key=lambda r: int(r.get("task_index", 0)))


@dataclass(frozen=True)
class Totals:
    tasks: int  # reports found
    processed: int = 0
    unchanged: int = 0
    failed: int = 0
    rejected: int = 0
    interrupted: int = 0
    backing_off: int = 0  # failed before, not retried yet (ingestion/failures.py)
    to_do: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # {repo, reason, stage, detail}
    error: str | None = None  # why the reports could not be read

    def to_dict(self) -> dict[str, object]:
        """The totals as `run --json` and `executions show --json` print them."""
        return {
            "reports": self.tasks,
            "processed": self.processed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "rejected": self.rejected,
            "interrupted": self.interrupted,
            "backing_off": self.backing_off,
            "failures": self.failures,
            "error": self.error,
        }


def totals(reports: list[dict[str, Any]]) -> Totals:
    def count(key: str) -> int:
        return sum(int((r.get("counts") or {}).get(key, 0) or 0) for r in reports)

    return Totals(
        tasks=len(reports),
        processed=count("processed"),
        unchanged=count("unchanged"),
        failed=count("failed"),
        rejected=count("rejected"),
        interrupted=count("interrupted"),
        backing_off=count("backing_off"),
        to_do=count("to_do"),
        failures=[f for r in reports for f in (r.get("failures") or []) if isinstance(f, dict)],
    )
