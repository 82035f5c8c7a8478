"""A task's output line as the log entry Cloud Run makes of it.

Resource ``cloud_run_job`` (labels project_id, job_name, location), entry labels
``run.googleapis.com/execution_name|task_index|task_attempt``, log
``projects/P/logs/run.googleapis.com%2Fstdout`` (or ``stderr``). A line that is a JSON
object is structured logging (https://cloud.google.com/logging/docs/structured-logging):
its special fields become entry fields and the rest, ``message`` included, the
``jsonPayload``. Any other line is a ``textPayload`` with no severity (DEFAULT) on both
streams — Cloud Run does not mark stderr as ERROR, unlike GKE.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.cloud.logging_v2.types import LogEntry
from google.logging.type import log_severity_pb2

_SEVERITIES = {name: value for name, value in log_severity_pb2.LogSeverity.items()}
_SEVERITIES["WARN"] = _SEVERITIES["WARNING"]
_SEVERITIES["FATAL"] = _SEVERITIES["CRITICAL"]


def severity_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = int(value)
        return number if number in _SEVERITIES.values() else None
    if isinstance(value, str):
        return _SEVERITIES.get(value.strip().upper())
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def task_log_entry(
    *,
    project: str,
    location: str,
    job: str,
    execution: str,
    task_index: int,
    attempt: int,
    stream: str,
    line: str,
    now: datetime,
) -> LogEntry:
    entry = LogEntry(
        log_name=f"projects/{project}/logs/run.googleapis.com%2F{stream}",
        resource={
            "type": "cloud_run_job",
            "labels": {"project_id": project, "job_name": job, "location": location},
        },
        labels={
            "run.googleapis.com/execution_name": execution,
            "run.googleapis.com/task_index": str(task_index),
            "run.googleapis.com/task_attempt": str(attempt),
        },
        timestamp=now,
    )
    payload: Any = None
    if line.lstrip().startswith("{"):
        try:
            payload = json.loads(line)
        except ValueError:
            payload = None
    if isinstance(payload, dict):
        try:
            return _structured(entry, payload)
        except (ValueError, TypeError, OverflowError):
            # A JSON object protobuf's Struct cannot hold (an integer too large for a
            # double): Cloud Logging keeps such a line as text.
            entry = LogEntry(entry)
    entry.text_payload = line
    return entry


def _structured(entry: LogEntry, payload: dict[str, Any]) -> LogEntry:
    entry = LogEntry(entry)  # fill a copy: a failure half-way leaves the caller's intact
    severity = severity_of(payload.get("severity"))
    if "severity" in payload and severity is not None:
        entry.severity = severity
        del payload["severity"]
    labels = payload.pop("logging.googleapis.com/labels", None)
    if isinstance(labels, dict):
        for key, value in labels.items():
            entry.labels[str(key)] = str(value)
    for key in ("time", "timestamp"):
        when = _parse_time(payload.get(key))
        if when is not None:
            entry.timestamp = when
            del payload[key]
            break
    trace = payload.pop("logging.googleapis.com/trace", None)
    if isinstance(trace, str):
        entry.trace = trace
    span = payload.pop("logging.googleapis.com/spanId", None)
    if isinstance(span, str):
        entry.span_id = span
    insert_id = payload.pop("logging.googleapis.com/insertId", None)
    if isinstance(insert_id, str):
        entry.insert_id = insert_id
    entry.json_payload = payload
    return entry
