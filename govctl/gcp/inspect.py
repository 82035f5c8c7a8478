"""Small reads that `govctl doctor` needs beyond the deploy layer's: the project, the
scheduler job as sent (its token kind and RunJob body, which :mod:`govctl.gcp.scheduler`'s
managed spec leaves out), the bucket and its digests, and log lines of an execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from govctl.errors import NotFound
from govctl.gcp import clients
from govctl.gcp.errors import translate


@dataclass(frozen=True)
class ProjectFacts:
    project_id: str
    number: str
    state: str


@dataclass(frozen=True)
class SchedulerFacts:
    name: str
    uri: str
    http_method: str
    token: str | None  # "oauth", "oidc" or None
    service_account: str
    body: bytes
    state: str  # ENABLED, PAUSED, DISABLED, UPDATE_FAILED
    schedule: str
    time_zone: str
    last_status: str | None  # None = never attempted; "OK", "PERMISSION_DENIED", …
    last_message: str
    last_attempt: datetime | None

    @property
    def overrides(self) -> bool:
        """Whether the RunJob body carries overrides (then runWithOverrides is needed)."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("overrides"))


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
        number=p.name.rsplit("/", 1)[-1],
        state=resourcemanager_v3.Project.State(p.state).name,
    )


def scheduler(path: str) -> SchedulerFacts | None:
    """The scheduler job, or None when it does not exist."""
    from google.cloud import scheduler_v1
    from google.rpc import code_pb2

    try:
        with translate(f"get scheduler job {path.rsplit('/', 1)[-1]}"):
            s = clients.scheduler().get_job(name=path)
    except NotFound:
        return None
    http = s.http_target
    token, account = None, ""
    if "oauth_token" in http:
        token, account = "oauth", http.oauth_token.service_account_email
    elif "oidc_token" in http:
        token, account = "oidc", http.oidc_token.service_account_email
    attempted = _time(s.last_attempt_time)
    status = None
    if attempted is not None:
        status = code_pb2.Code.Name(s.status.code) if "status" in s else "OK"
    return SchedulerFacts(
        name=s.name,
        uri=http.uri,
        http_method=scheduler_v1.HttpMethod(http.http_method).name,
        token=token,
        service_account=account,
        body=bytes(http.body),
        state=scheduler_v1.Job.State(s.state).name,
        schedule=s.schedule,
        time_zone=s.time_zone or "Etc/UTC",
        last_status=status,
        last_message=s.status.message if "status" in s else "",
        last_attempt=attempted,
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
