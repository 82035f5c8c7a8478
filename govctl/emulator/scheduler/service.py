"""Cloud Scheduler v1 (``google.cloud.scheduler.v1.CloudScheduler``) for the loopback cloud.

Jobs live in memory as ``scheduler_v1.Job`` messages. While the emulator runs, a ticker thread
compares each ENABLED job's ``schedule_time`` with ``cloud.clock.now()`` and dispatches the due
ones; RunJob dispatches at once. What an attempt does is decided by :mod:`.targets`; every
attempt is written to Cloud Logging the way Cloud Scheduler writes it
(``cloudscheduler.googleapis.com/executions``, AttemptStarted then AttemptFinished).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from google.cloud import scheduler_v1
from google.protobuf import duration_pb2, empty_pb2
from google.rpc import status_pb2

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.rpc import Paging, invalid_argument, matched
from govctl.emulator.scheduler import targets
from govctl.emulator.store import Store, copy, masked_update
from govctl.emulator.ticker import Ticker

State = scheduler_v1.Job.State

_PARENT_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)")
_NAME_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/jobs/([a-zA-Z0-9_-]{1,500})")
_NAME_FORMAT = (
    'Job name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/jobs/<JOB_ID>".'
)
# What a caller may set; the rest of Job is output only.
_USER_FIELDS = (
    "description",
    "pubsub_target",
    "app_engine_http_target",
    "http_target",
    "schedule",
    "time_zone",
    "retry_config",
    "attempt_deadline",
)
_OUTPUT_FIELDS = ("state", "status", "schedule_time", "last_attempt_time", "user_update_time")
DEFAULT_TIME_ZONE = "Etc/UTC"
# Defaults and bounds from google/cloud/scheduler/v1/job.proto and target.proto.
_HTTP_DEADLINE = (timedelta(seconds=15), timedelta(minutes=30), timedelta(minutes=3))
_OTHER_DEADLINE = (timedelta(seconds=15), timedelta(hours=24), timedelta(minutes=3))
MAX_RETRY_COUNT = 5
# ListJobsRequest.page_size: "The maximum page size is 500. If unspecified, the page size will
# be the maximum." (cloudscheduler.proto)
_PAGING = Paging(default=500, maximum=500)
TICK_SECONDS = 0.2


def next_run(schedule: str, time_zone: str, after: datetime) -> datetime:
    """The first cron time strictly after ``after``, reckoned in ``time_zone`` (UTC result)."""
    local = after.astimezone(ZoneInfo(time_zone))
    nxt: datetime = croniter(schedule, local).get_next(datetime)
    return nxt.astimezone(UTC)


def _check_schedule(schedule: str) -> None:
    if not schedule.strip():
        raise invalid_argument("Schedule is required.")
    # unix-cron is exactly five fields; croniter would also take a sixth (seconds) field.
    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        raise invalid_argument(
            f"Schedule or time zone is invalid: {schedule!r} is not a unix-cron expression "
            "of five fields (minute hour day-of-month month day-of-week)."
        )


def _check_time_zone(time_zone: str) -> None:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid_argument(
            f"Schedule or time zone is invalid: unknown time zone {time_zone!r} "
            "(use an IANA name such as Europe/London)."
        ) from None


def _check_parent(parent: str) -> None:
    if not _PARENT_RE.fullmatch(parent):
        raise invalid_argument(
            'Parent must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>".'
        )


def _duration(d: duration_pb2.Duration) -> timedelta:
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)


def _check_target(job: Any) -> None:
    target = job.WhichOneof("target")
    if target is None:
        raise invalid_argument(
            "A job needs a target: http_target, pubsub_target or app_engine_http_target."
        )
    if target == "http_target":
        _check_http_target(job.http_target)
    elif target == "pubsub_target" and not re.fullmatch(
        r"projects/[^/]+/topics/[^/]+", job.pubsub_target.topic_name
    ):
        raise invalid_argument("PubsubTarget.topic_name must be projects/PROJECT/topics/TOPIC.")
    bounds = _HTTP_DEADLINE if target == "http_target" else _OTHER_DEADLINE
    if not job.HasField("attempt_deadline"):
        job.attempt_deadline.FromTimedelta(bounds[2])
    elif not bounds[0] <= _duration(job.attempt_deadline) <= bounds[1]:
        raise invalid_argument(
            f"attempt_deadline must be between {bounds[0].seconds}s and "
            f"{int(bounds[1].total_seconds())}s for this target."
        )


def _check_http_target(http: Any) -> None:
    """Check an HttpTarget and fill its defaults (method POST, the OAuth scope)."""
    parts = urlsplit(http.uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_argument(f"HttpTarget.uri must be an absolute http(s) URL, got {http.uri!r}.")
    if len(http.uri) > 2083:
        raise invalid_argument("HttpTarget.uri must be at most 2083 characters.")
    token_kind = http.WhichOneof("authorization_header")
    if token_kind == "oauth_token" and not parts.hostname.endswith(".googleapis.com"):
        raise invalid_argument(
            "OAuth tokens are only sent to Google APIs (*.googleapis.com); use an OIDC token "
            f"for {parts.hostname}."
        )
    if token_kind is not None and not getattr(http, token_kind).service_account_email:
        raise invalid_argument("The token's service_account_email is required.")
    if http.http_method == scheduler_v1.HttpMethod.HTTP_METHOD_UNSPECIFIED:
        http.http_method = scheduler_v1.HttpMethod.POST
    if token_kind == "oauth_token" and not http.oauth_token.scope:
        http.oauth_token.scope = "https://www.googleapis.com/auth/cloud-platform"


def _check_retry(job: Any) -> None:
    rc = job.retry_config
    if not job.HasField("retry_config"):
        # The defaults Cloud Scheduler fills in (job.proto, RetryConfig).
        rc.retry_count = 0
        rc.max_retry_duration.FromTimedelta(timedelta(0))
        rc.min_backoff_duration.FromTimedelta(timedelta(seconds=5))
        rc.max_backoff_duration.FromTimedelta(timedelta(hours=1))
        rc.max_doublings = 5
        return
    if not 0 <= rc.retry_count <= MAX_RETRY_COUNT:
        raise invalid_argument(f"retry_count must be between 0 and {MAX_RETRY_COUNT}.")
    if rc.max_doublings < 0:
        raise invalid_argument("max_doublings must not be negative.")
    if _duration(rc.min_backoff_duration) > _duration(rc.max_backoff_duration) and rc.HasField(
        "max_backoff_duration"
    ):
        raise invalid_argument("min_backoff_duration must not exceed max_backoff_duration.")


class SchedulerService(Service):
    key = "scheduler"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._jobs: Store[Any, scheduler_v1.Job] = Store(
            scheduler_v1.Job,
            missing="Job not found: {name}.",
            exists="Job {name} already exists.",
        )
        self._ticker = Ticker("scheduler-ticker", TICK_SECONDS, self._tick)

    # validation -------------------------------------------------------------------------------
    def _validate(self, job: Any) -> None:
        """Check and complete the user-settable fields of ``job`` (raw pb) in place."""
        if len(job.description) > 500:
            raise invalid_argument("description must be at most 500 characters.")
        _check_schedule(job.schedule)
        if not job.time_zone:
            job.time_zone = DEFAULT_TIME_ZONE
        _check_time_zone(job.time_zone)
        _check_target(job)
        _check_retry(job)

    def _reschedule(self, job: Any, now: datetime) -> None:
        if job.state == State.ENABLED:
            job.schedule_time.FromDatetime(next_run(job.schedule, job.time_zone, now))
        else:
            job.ClearField("schedule_time")

    @staticmethod
    def _name(name: str) -> re.Match[str]:
        return matched(_NAME_RE, name, _NAME_FORMAT)

    def _get(self, name: str) -> Any:
        self._name(name)
        return self._jobs.require(name)

    def _out(self, job: Any) -> scheduler_v1.Job:
        return self._jobs.out(job)

    # RPCs -------------------------------------------------------------------------------------
    def create_job(self, request: scheduler_v1.CreateJobRequest, context: Any) -> Any:
        _check_parent(request.parent)
        job = self._jobs.stored(request.job)
        if not job.name:
            raise invalid_argument("Job name is required. " + _NAME_FORMAT)
        self._name(job.name)
        if not job.name.startswith(request.parent + "/jobs/"):
            raise invalid_argument(f"Job {job.name} is not under parent {request.parent}.")
        for f in _OUTPUT_FIELDS:
            job.ClearField(f)
        self._validate(job)
        now = self.cloud.clock.now()
        job.state = State.ENABLED
        job.user_update_time.FromDatetime(now)
        self._reschedule(job, now)
        with self.lock:
            self._jobs.add(job)
            self.changed()
            return self._out(job)

    def get_job(self, request: scheduler_v1.GetJobRequest, context: Any) -> Any:
        with self.lock:
            return self._out(self._get(request.name))

    def list_jobs(self, request: scheduler_v1.ListJobsRequest, context: Any) -> Any:
        _check_parent(request.parent)
        with self.lock:
            jobs = self._jobs.copies(request.parent + "/jobs/")
        return _PAGING.respond(scheduler_v1.ListJobsResponse, "jobs", jobs, request)

    def update_job(self, request: scheduler_v1.UpdateJobRequest, context: Any) -> Any:
        src = scheduler_v1.Job.pb(request.job)
        mask = scheduler_v1.UpdateJobRequest.pb(request).update_mask
        top = {p.split(".")[0] for p in mask.paths}
        if "name" in top:
            raise invalid_argument("The job name cannot be updated.")
        if top & set(_OUTPUT_FIELDS):
            raise invalid_argument(
                f"Output only fields cannot be updated: {sorted(top & set(_OUTPUT_FIELDS))}"
            )
        with self.lock:
            current = self._get(src.name)
            updated = masked_update(current, src, mask, _USER_FIELDS)
            self._validate(updated)
            now = self.cloud.clock.now()
            updated.user_update_time.FromDatetime(now)
            self._reschedule(updated, now)
            self._jobs.put(updated)
            self.changed()
            return self._out(updated)

    def delete_job(self, request: scheduler_v1.DeleteJobRequest, context: Any) -> Any:
        with self.lock:
            self._get(request.name)
            self._jobs.remove(request.name)
            self.changed()
        return empty_pb2.Empty()

    def pause_job(self, request: scheduler_v1.PauseJobRequest, context: Any) -> Any:
        rule = "an ENABLED job can be paused"
        return self._switch(request.name, State.ENABLED, State.PAUSED, rule)

    def resume_job(self, request: scheduler_v1.ResumeJobRequest, context: Any) -> Any:
        rule = "a PAUSED job can be resumed"
        return self._switch(request.name, State.PAUSED, State.ENABLED, rule)

    def _switch(self, name: str, before: Any, after: Any, rule: str) -> Any:
        """Pause or resume: FAILED_PRECONDITION unless the job is in state ``before``."""
        with self.lock:
            job = self._get(name)
            if job.state != before:
                state = State(job.state).name
                raise rpc.failed_precondition(f"Job {name} is {state}; only {rule}.")
            now = self.cloud.clock.now()
            job.state = after
            job.user_update_time.FromDatetime(now)
            self._reschedule(job, now)
            self.changed()
            return self._out(job)

    def run_job(self, request: scheduler_v1.RunJobRequest, context: Any) -> Any:
        with self.lock:
            job = copy(self._get(request.name))
        # Unlike production, the attempt finishes before RunJob returns, so the returned job
        # already carries its status (run_job of the Run service only starts the execution).
        self._attempt(job, self.cloud.clock.now())
        with self.lock:
            return self._out(self._jobs.get(request.name, job))

    # firing -----------------------------------------------------------------------------------
    def _attempt(self, job: Any, scheduled: datetime) -> None:
        started = self.cloud.clock.now()
        outcome = targets.dispatch(self.cloud, job, scheduled, started)
        with self.lock:
            current = self._jobs.get(job.name)
            if current is not None:
                current.last_attempt_time.FromDatetime(started)
                current.status.CopyFrom(
                    status_pb2.Status(code=outcome.code.value[0], message=outcome.message)
                )
                self.changed()

    def _due(self, now: datetime) -> list[tuple[Any, datetime]]:
        due = []
        with self.lock:
            for job in self._jobs:
                if job.state != State.ENABLED or not job.HasField("schedule_time"):
                    continue
                at = job.schedule_time.ToDatetime(tzinfo=UTC)
                if at <= now:
                    # One attempt however many times were missed; then the next time after now.
                    due.append((copy(job), at))
                    job.schedule_time.FromDatetime(next_run(job.schedule, job.time_zone, now))
                    self.changed()
        return due

    def _tick(self) -> None:
        for job, at in self._due(self.cloud.clock.now()):
            if self._ticker.stopping:
                return
            self._attempt(job, at)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    # wiring and persistence ------------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        return [
            gapic_api("google.cloud.scheduler_v1.services.cloud_scheduler").bind(
                {
                    "CreateJob": self.create_job,
                    "GetJob": self.get_job,
                    "ListJobs": self.list_jobs,
                    "UpdateJob": self.update_job,
                    "DeleteJob": self.delete_job,
                    "PauseJob": self.pause_job,
                    "ResumeJob": self.resume_job,
                    "RunJob": self.run_job,
                }
            )
        ]

    def dump(self) -> Any:
        return {"jobs": self._jobs.dump()}

    def load(self, data: Any) -> None:
        self._jobs.load((data or {}).get("jobs", []))
