"""Cloud Scheduler jobs as govctl sees them: an HTTP target that runs the Cloud Run job.

Scheduler v1 jobs carry no etag. Updates are therefore read-modify-write guarded by
``user_update_time``: the job is read again just before the write and the write is refused
when that time moved since the plan was made. (A change landing between that read and the
write is not detected: the API offers nothing better.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from govctl.errors import CloudError, NotFound
from govctl.gcp import clients
from govctl.gcp.errors import translate
from govctl.gcp.jobs import CONCURRENT_FIX

if TYPE_CHECKING:
    from google.cloud import scheduler_v1

# The fields govctl manages, as UpdateJob's field mask names them.
MANAGED_PATHS = ("schedule", "time_zone", "http_target", "attempt_deadline")


@dataclass(frozen=True)
class ScheduleSpec:
    """A scheduler job's managed fields, plus what the service reports when read."""

    cron: str
    time_zone: str
    uri: str
    http_method: str  # "POST"
    service_account: str  # of the OAuth token ("" for none)
    scope: str
    attempt_deadline: timedelta
    state: str = ""  # ENABLED, PAUSED, …
    user_update_time: datetime | None = None
    schedule_time: datetime | None = None  # the next fire time the service computed
    last_attempt_time: datetime | None = None
    status_code: int | None = None  # google.rpc.Code of the last attempt (0 = OK)
    status_message: str = ""
    status_name: str = ""  # the code's name: OK, PERMISSION_DENIED, …
    auth: str = ""  # "oauth", "oidc" or "" (none)
    body: bytes = b""  # the RunJob request body it sends (not managed: deploy sends none)

    @property
    def last_status(self) -> str | None:
        """The last attempt's status name ("OK", "PERMISSION_DENIED", …); None before any."""
        if self.last_attempt_time is None:
            return None
        return self.status_name or "OK"

    @property
    def overrides(self) -> bool:
        """Whether the RunJob body carries overrides (then runWithOverrides is needed)."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("overrides"))


def _time(value: Any) -> datetime | None:
    # proto-plus gives an epoch datetime for an unset timestamp
    return value if value and value.timestamp() > 0 else None


def _spec(job: scheduler_v1.Job) -> ScheduleSpec:
    from google.cloud import scheduler_v1
    from google.rpc import code_pb2

    target = job.http_target
    auth = "oauth" if "oauth_token" in target else "oidc" if "oidc_token" in target else ""
    token = target.oauth_token if auth == "oauth" else target.oidc_token
    has_status = "status" in job and "last_attempt_time" in job
    return ScheduleSpec(
        cron=job.schedule,
        time_zone=job.time_zone or "Etc/UTC",
        uri=target.uri,
        http_method=scheduler_v1.HttpMethod(target.http_method).name if target.uri else "",
        service_account=token.service_account_email if auth else "",
        scope=target.oauth_token.scope if auth == "oauth" else "",
        attempt_deadline=job.attempt_deadline,
        state=scheduler_v1.Job.State(job.state).name,
        user_update_time=_time(job.user_update_time),
        schedule_time=_time(job.schedule_time),
        last_attempt_time=_time(job.last_attempt_time),
        status_code=job.status.code if has_status else None,
        status_message=job.status.message if has_status else "",
        status_name=_code_name(code_pb2, job.status.code) if has_status else "",
        auth=auth,
        body=bytes(target.body),
    )


def _code_name(code_pb2: Any, code: int) -> str:
    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:
        return f"code {code}"


def _job(name: str, spec: ScheduleSpec) -> scheduler_v1.Job:
    from google.cloud import scheduler_v1

    return scheduler_v1.Job(
        name=name,
        schedule=spec.cron,
        time_zone=spec.time_zone,
        attempt_deadline=spec.attempt_deadline,
        http_target=scheduler_v1.HttpTarget(
            uri=spec.uri,
            http_method=getattr(scheduler_v1.HttpMethod, spec.http_method),
            oauth_token=scheduler_v1.OAuthToken(
                service_account_email=spec.service_account, scope=spec.scope
            ),
        ),
    )


def get(name: str) -> ScheduleSpec | None:
    """The scheduler job, or None when there is none."""
    try:
        with translate(f"get scheduler job {name}"):
            return _spec(clients.scheduler().get_job(name=name))
    except NotFound:
        return None


def schedule_id(path: str) -> str:
    """The scheduler job's id in its resource name (the client library's parser)."""
    from google.cloud import scheduler_v1

    return scheduler_v1.CloudSchedulerClient.parse_job_path(path).get("job", path)


def require(name: str) -> ScheduleSpec:
    spec = get(name)
    if spec is None:
        raise NotFound(f"scheduler job {name} does not exist", fix="run `govctl deploy` first")
    return spec


def create(parent: str, name: str, spec: ScheduleSpec) -> ScheduleSpec:

    what = f"create scheduler job {name}"
    try:
        with translate(what):
            return _spec(clients.scheduler().create_job(parent=parent, job=_job(name, spec)))
    except CloudError as err:
        if err.reason == "ALREADY_EXISTS":
            raise CloudError(
                f"{what}: it was created meanwhile", fix=CONCURRENT_FIX, reason=err.reason
            ) from None
        raise


def update(
    name: str,
    spec: ScheduleSpec,
    seen: datetime | None,
    paths: tuple[str, ...] = MANAGED_PATHS,
) -> ScheduleSpec:
    """Write the ``paths`` of ``spec``; refused when the job changed since ``seen``."""
    from google.protobuf import field_mask_pb2

    client = clients.scheduler()
    what = f"update scheduler job {name}"
    with translate(what):
        current = _spec(client.get_job(name=name))
    if current.user_update_time != seen:
        raise CloudError(f"{what}: it changed since the plan was made", fix=CONCURRENT_FIX)
    with translate(what):
        job = client.update_job(
            job=_job(name, spec), update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
    return _spec(job)


def pause(name: str) -> ScheduleSpec:
    with translate(f"pause scheduler job {name}"):
        return _spec(clients.scheduler().pause_job(name=name))


def resume(name: str) -> ScheduleSpec:
    with translate(f"resume scheduler job {name}"):
        return _spec(clients.scheduler().resume_job(name=name))


def run(name: str) -> ScheduleSpec:
    """Fire the job now (its target is called as on a scheduled attempt)."""
    with translate(f"run scheduler job {name}"):
        return _spec(clients.scheduler().run_job(name=name))


def delete(name: str) -> None:
    """Delete the scheduler job (`gcloud scheduler jobs delete`); NotFound when it is gone
    already (DeleteJob's NOT_FOUND)."""
    with translate(f"delete scheduler job {schedule_id(name)}"):
        clients.scheduler().delete_job(name=name)
