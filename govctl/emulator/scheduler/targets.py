"""What one attempt of a scheduler job does, and the log entries it leaves.

The one target the loopback cloud can serve is the Cloud Run Admin API's run-job endpoint, in
its v2 form (``https://run.googleapis.com/v2/projects/P/locations/R/jobs/J:run``) or its v1
form (``https://R-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/P/jobs/J:run``).
Production checks the OAuth token's service account against the job's IAM policy and the
project's: the same check happens here, through the "iam" and "run" services. Any other URI
fails the attempt: another ``*.googleapis.com`` path is NOT_FOUND (the emulator has no such
REST route), any other host is UNAVAILABLE (the emulator sends nothing off the machine), and
Pub/Sub and App Engine targets are UNAVAILABLE (not emulated).
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.cloud import run_v2, scheduler_v1
from google.cloud.logging_v2 import types as logging_types
from google.logging.type import http_request_pb2, log_severity_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from govctl.emulator.cloud import Cloud
from govctl.emulator.rpc import RpcError
from govctl.emulator.store import wrap

_V2_RUN = re.compile(r"/v2/projects/([^/]+)/locations/([^/]+)/jobs/([^/:]+):run")
_V1_RUN = re.compile(r"/apis/run\.googleapis\.com/v1/namespaces/([^/]+)/jobs/([^/:]+):run")
_V1_HOST = re.compile(r"([a-z][-a-z0-9]*[0-9])-run\.googleapis\.com")

LOG_ID = "cloudscheduler.googleapis.com%2Fexecutions"
_TYPE = "type.googleapis.com/google.cloud.scheduler.logging."

# The HTTP status a Google REST API answers with for each canonical code.
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    message: str = ""
    # Whether a request reached a (emulated) server, so an HTTP status exists to log.
    delivered: bool = True


@dataclass(frozen=True)
class RunTarget:
    project: str
    location: str
    job: str

    @property
    def job_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/jobs/{self.job}"


def parse_run_uri(uri: str) -> RunTarget | None:
    """The Cloud Run job a run-job URI names, or None if it is not one."""
    parts = urlsplit(uri)
    if parts.scheme != "https" or parts.query or parts.fragment:
        return None
    host = parts.hostname or ""
    if host == "run.googleapis.com":
        m = _V2_RUN.fullmatch(parts.path)
        return RunTarget(m.group(1), m.group(2), m.group(3)) if m else None
    host_match = _V1_HOST.fullmatch(host)
    if host_match:
        m = _V1_RUN.fullmatch(parts.path)
        return RunTarget(m.group(1), host_match.group(1), m.group(2)) if m else None
    return None


def _target_type(job: Any) -> str:
    return {
        "http_target": "HTTP",
        "pubsub_target": "PUB_SUB",
        "app_engine_http_target": "APP_ENGINE_HTTP",
    }.get(job.WhichOneof("target") or "", "TARGET_TYPE_UNSPECIFIED")


def _overrides(body: bytes) -> run_v2.RunJobRequest.Overrides | None:
    """The ``overrides`` of a RunJob request body (JSON, camelCase), if any."""
    if not body.strip():
        return None
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        request = run_v2.RunJobRequest.pb()()
        json_format.ParseDict(data, request)
    except (ValueError, json_format.ParseError) as err:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload: {err}") from None
    if not request.HasField("overrides"):
        return None
    return wrap(run_v2.RunJobRequest.Overrides, request.overrides)


def _token_refused(iam: Any, job: Any, email: str) -> Outcome | None:
    """Why Cloud Scheduler cannot get an OAuth token for ``email``, if it cannot."""
    # Cloud Scheduler mints the token as its service agent; without the agent's role it cannot.
    own_project = job.name.split("/")[1]
    agent = iam.scheduler_agent(own_project)
    if not iam.allows(
        iam.project_iam_policy(own_project), agent, "iam.serviceAccounts.getAccessToken"
    ):
        return Outcome(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Cloud Scheduler's service agent {agent.partition(':')[2]} cannot get a token for "
            f"{email}: it lacks roles/cloudscheduler.serviceAgent on project {own_project}.",
            delivered=False,
        )
    account = iam.service_account(email)
    if account is None or account.disabled:
        why = "no such service account" if account is None else "the service account is disabled"
        return Outcome(
            grpc.StatusCode.UNAUTHENTICATED,
            f"Cloud Scheduler could not get a token for {email}: {why}.",
            delivered=False,
        )
    return None


def _start_run_job(cloud: Cloud, job: Any, target: RunTarget) -> Outcome:
    http = job.http_target
    if http.http_method != scheduler_v1.HttpMethod.POST:
        return Outcome(grpc.StatusCode.NOT_FOUND, f"{http.uri} has no {_method(http)} route.")
    if not http.HasField("oauth_token"):
        # Google APIs take OAuth access tokens; an OIDC token or none is refused.
        return Outcome(
            grpc.StatusCode.UNAUTHENTICATED,
            "Request is missing required authentication credential (an OAuth token).",
        )
    iam = cloud.service("iam")
    email = http.oauth_token.service_account_email
    refused = _token_refused(iam, job, email)
    if refused is not None:
        return refused
    try:
        overrides = _overrides(http.body)
    except RpcError as err:
        return Outcome(err.code, err.message)
    member = f"serviceAccount:{email}"
    needed = ["run.jobs.run"] + (["run.jobs.runWithOverrides"] if overrides else [])
    project = iam.project_id(target.project)
    job_name = f"projects/{project}/locations/{target.location}/jobs/{target.job}"
    run = cloud.service("run")

    def granted(permission: str) -> bool:
        if iam.allows(iam.project_iam_policy(project), member, permission):
            return True
        try:
            return bool(iam.allows(run.job_iam_policy(job_name), member, permission))
        except RpcError:
            return False  # a job that does not exist grants nothing

    missing = [p for p in needed if not granted(p)]
    if missing:
        # As in production, a caller without access is not told whether the job exists.
        return Outcome(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Permission '{missing[0]}' denied on resource '{job_name}' (or resource may not "
            "exist).",
        )
    try:
        execution = run.run_job(job_name, overrides)
    except RpcError as err:
        return Outcome(err.code, err.message)
    return Outcome(grpc.StatusCode.OK, f"started {execution.name}")


def _method(http: Any) -> str:
    return str(scheduler_v1.HttpMethod(http.http_method).name)


def dispatch(cloud: Cloud, job: Any, scheduled: datetime, started: datetime) -> Outcome:
    """Run one attempt of ``job`` (raw pb), log it, and say how it ended."""
    url = job.http_target.uri if job.WhichOneof("target") == "http_target" else ""
    _log(cloud, job, started, scheduled, None, url)
    outcome = _attempt(cloud, job)
    _log(cloud, job, cloud.clock.now(), scheduled, outcome, url)
    return outcome


def _attempt(cloud: Cloud, job: Any) -> Outcome:
    kind = job.WhichOneof("target")
    if kind != "http_target":
        return Outcome(
            grpc.StatusCode.UNAVAILABLE,
            f"{_target_type(job)} targets are not emulated by the loopback cloud.",
            delivered=False,
        )
    uri = job.http_target.uri
    target = parse_run_uri(uri)
    if target is None:
        host = urlsplit(uri).hostname or ""
        if host.endswith(".googleapis.com"):
            return Outcome(grpc.StatusCode.NOT_FOUND, f"The loopback cloud does not serve {uri}.")
        return Outcome(
            grpc.StatusCode.UNAVAILABLE,
            f"The loopback cloud sends no requests off the machine; {host} was not called.",
            delivered=False,
        )
    return _start_run_job(cloud, job, target)


def _log(
    cloud: Cloud,
    job: Any,
    when: datetime,
    scheduled: datetime,
    outcome: Outcome | None,
    url: str,
) -> None:
    """One AttemptStarted (``outcome`` None) or AttemptFinished entry, as Cloud Scheduler
    writes them: INFO, or ERROR for a failed attempt, whose payload carries the status."""
    m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)", job.name)
    if m is None:
        return
    project, location, job_id = m.groups()
    payload = struct_pb2.Struct()
    fields: dict[str, Any] = {
        "@type": _TYPE + ("AttemptStarted" if outcome is None else "AttemptFinished"),
        "jobName": job.name,
        "targetType": _target_type(job),
    }
    if url:
        fields["url"] = url
    if outcome is None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(scheduled)
        fields["scheduledTime"] = stamp.ToJsonString()
    elif outcome.code != grpc.StatusCode.OK:
        fields["status"] = outcome.code.name
        if outcome.message:
            fields["debugInfo"] = outcome.message
    payload.update(fields)
    failed = outcome is not None and outcome.code != grpc.StatusCode.OK
    entry = logging_types.LogEntry(
        log_name=f"projects/{project}/logs/{LOG_ID}",
        resource={
            "type": "cloud_scheduler_job",
            "labels": {"project_id": project, "job_id": job_id, "location": location},
        },
        severity=log_severity_pb2.ERROR if failed else log_severity_pb2.INFO,
        json_payload=payload,
    )
    entry_pb = logging_types.LogEntry.pb(entry)
    entry_pb.timestamp.FromDatetime(when)
    if outcome is not None and outcome.delivered and url:
        entry_pb.http_request.CopyFrom(
            http_request_pb2.HttpRequest(
                request_method=_method(job.http_target),
                request_url=url,
                status=_HTTP_STATUS.get(outcome.code, 500),
            )
        )
    # With no logging service loaded, attempts still run, unlogged.
    with contextlib.suppress(LookupError):
        cloud.service("logging").write_entries([entry_pb])
