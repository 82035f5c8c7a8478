"""Small reads that `govctl doctor` needs beyond the other adapters': the project (with a
bounded first call) and log lines of an execution."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from govctl.gcp import clients
from govctl.gcp.errors import translate


@dataclass(frozen=True)
class ProjectFacts:
    project_id: str
    number: str
    state: str


def project(project_id: str, timeout: float | None = None) -> ProjectFacts:
    """The project; ``timeout`` bounds the whole call, retries included."""
    from google.api_core import retry as retries
    from google.cloud import resourcemanager_v3

    policy: Any = None
    if timeout is not None:
        policy = retries.Retry(
            initial=0.2,
            maximum=2.0,
            multiplier=2.0,
            timeout=timeout,
            predicate=retries.if_transient_error,
        )
    with translate(f"get project {project_id}", not_found="check the project id"):
        if policy is None:
            p = clients.projects().get_project(name=f"projects/{project_id}")
        else:
            p = clients.projects().get_project(
                name=f"projects/{project_id}", retry=policy, timeout=timeout
            )
    return ProjectFacts(
        project_id=p.project_id,
        number=resourcemanager_v3.ProjectsClient.parse_project_path(p.name)["project"],
        state=resourcemanager_v3.Project.State(p.state).name,
    )


def log_texts(project: str, filter_: str, limit: int = 20) -> list[str]:
    """The newest ``limit`` matching entries' messages, oldest first."""
    lines: list[str] = []
    with translate("read Cloud Logging entries"):
        pager = clients.logging().list_log_entries(
            request={
                "resource_names": [f"projects/{project}"],
                "filter": filter_,
                "order_by": "timestamp desc",
                "page_size": limit,
            }
        )
        for entry in pager:
            lines.append(_message(entry))
            if len(lines) >= limit:
                break
    return list(reversed(lines))


def _message(entry: Any) -> str:
    if entry.text_payload:
        return str(entry.text_payload)
    payload = entry.json_payload
    if payload is not None and "message" in payload:
        return str(payload["message"])
    return json.dumps(dict(payload)) if payload is not None else ""


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _time(value: Any) -> datetime | None:
    if value is None or not getattr(value, "year", 0) or value.timestamp() <= 0:
        return None
    return value  # type: ignore[no-any-return]
