"""What the emulated Cloud Monitoring evaluates: the metric filters of alert conditions, and
the e-mail a firing policy "sends" (a line of ``mailbox.jsonl`` in the state directory).

Only one metric exists in the loopback cloud: Cloud Run's
``run.googleapis.com/job/completed_execution_count`` on the ``cloud_run_job`` resource
(labels ``project_id``, ``location``, ``job_name``), with the metric label ``result``
(``succeeded`` or ``failed``). Source: Google Cloud's metrics list,
https://cloud.google.com/monitoring/api/metrics_gcp_p_z (section "run"), and alert policies
in public repositories that filter on ``metric.labels.result="failed"``. Each completed
execution is one point of value 1; aggregations are not applied.

A metric filter is a conjunction of ``path = "value"`` / ``path != "value"`` terms joined by
``AND`` (the form every policy govctl writes uses); anything else is refused at create time
rather than stored and never evaluated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from govctl.emulator.rpc import invalid_argument

COMPLETED_EXECUTIONS = "run.googleapis.com/job/completed_execution_count"
RUN_JOB_RESOURCE = "cloud_run_job"
MAILBOX = "mailbox.jsonl"

_TERM = re.compile(
    r'\s*(?P<path>[a-zA-Z_][\w.]*(?:\."[^"]+")?)\s*(?P<op>!=|=)\s*"(?P<value>[^"]*)"\s*'
)
# Both spellings the filter language accepts: metric.label.x and metric.labels.x.
_ALIASES = {"metric.label.": "metric.labels.", "resource.label.": "resource.labels."}


@dataclass(frozen=True)
class Term:
    path: str  # normalised: metric.type, resource.type, metric.labels.result, ...
    negated: bool
    value: str


def parse_filter(text: str) -> tuple[Term, ...]:
    """The terms of a metric filter; INVALID_ARGUMENT for a form the emulator cannot read."""
    if not text.strip():
        raise invalid_argument("The condition's filter is required.")
    terms = parse_terms(text)
    paths = {t.path for t in terms}
    if "metric.type" not in paths or "resource.type" not in paths:
        raise invalid_argument("The filter must specify the metric type and the resource type.")
    return terms


def parse_terms(text: str) -> tuple[Term, ...]:
    """``path = "value"`` terms joined by AND (also the list methods' ``filter``)."""
    terms = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        m = _TERM.fullmatch(part)
        if not m:
            raise invalid_argument(
                f'The emulator evaluates only filters of `path = "value"` terms joined by AND; '
                f"cannot read {part!r}."
            )
        path = m["path"].replace('"', "")
        for alias, canonical in _ALIASES.items():
            if path.startswith(alias):
                path = canonical + path[len(alias) :]
        terms.append(Term(path, m["op"] == "!=", m["value"]))
    return tuple(terms)


def matches(terms: tuple[Term, ...], point: dict[str, str]) -> bool:
    """Whether a point (``{"metric.type": …, "resource.labels.job_name": …}``) passes."""
    return all((point.get(t.path) == t.value) != t.negated for t in terms)


def execution_point(event: dict[str, Any]) -> dict[str, str]:
    """The completed-execution metric's point for a ``run.execution_completed`` event."""
    _, project, _, location, _, job = event["job"].split("/")
    return {
        "metric.type": COMPLETED_EXECUTIONS,
        "metric.labels.result": event["result"],
        "resource.type": RUN_JOB_RESOURCE,
        "resource.labels.project_id": project,
        "resource.labels.location": location,
        "resource.labels.job_name": job,
    }


def compare(comparison: int, value: float, threshold: float) -> bool:
    """``ComparisonType``: GT=1, GE=2, LT=3, LE=4, EQ=5, NE=6."""
    return {
        1: value > threshold,
        2: value >= threshold,
        3: value < threshold,
        4: value <= threshold,
        5: value == threshold,
        6: value != threshold,
    }.get(comparison, False)


def deliver(state_dir: Path | None, message: dict[str, Any]) -> None:
    """Append one e-mail to the mailbox (nothing without a state directory)."""
    if state_dir is None:
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / MAILBOX).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(message, default=_iso, ensure_ascii=False) + "\n")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_mailbox(state_dir: Path) -> list[dict[str, Any]]:
    """Every message delivered so far (tests and the demo read it)."""
    path = state_dir / MAILBOX
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
