"""The Cloud Run Admin API v1 (Knative form) that ``gcloud run jobs`` speaks, on regional
hosts (``{region}-run.googleapis.com``, or any ``{region}-HOST`` reaching the gateway, which
is what gcloud makes of an endpoint override): jobs, executions and tasks under
``/apis/run.googleapis.com/v1/namespaces/{project}/``, answered by calling the emulator's
Run v2 methods (the same servicers as gRPC), so both views show the same resources.

Methods (https://cloud.google.com/run/docs/reference/rest/v1/namespaces.jobs and siblings):
jobs get/list/create/replaceJob/delete/run, executions get/list/delete/cancel, tasks get/list;
lists take ``labelSelector``, ``limit`` and ``continue``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format, message

from govctl.emulator.rest import knative_convert as convert
from govctl.emulator.rest import registry
from govctl.emulator.rest.errors import RestError, bad_request
from govctl.emulator.rest.gateway import Gateway, NativeRoute, Request
from govctl.emulator.rest.transcode import parse_body

JOBS = "google.cloud.run.v2.Jobs"
EXECUTIONS = "google.cloud.run.v2.Executions"
TASKS = "google.cloud.run.v2.Tasks"
_REGION = re.compile(r"(?P<region>[a-z]+-[a-z]+[0-9]+)-.+")
_NS = r"/apis/run\.googleapis\.com/v1/namespaces/(?P<ns>[^/]+)"
_ID = r"(?P<id>[^/:]+)"

Handler = Callable[[Gateway, Request, re.Match[str]], Any]


class _Scope:
    """The project and region of a request: the namespace, and the host's region prefix."""

    def __init__(self, request: Request, m: re.Match[str]) -> None:
        region = _REGION.fullmatch(request.host)
        if region is None:
            raise convert.not_regional(request.host)
        self.project = m.group("ns")
        self.region = region.group("region")
        self.parent = f"projects/{self.project}/locations/{self.region}"

    def job(self, job_id: str) -> str:
        return f"{self.parent}/jobs/{job_id}"


def _dict(msg: message.Message) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(msg)
    return out


def _unpack(any_msg: Any, type_name: str) -> dict[str, Any]:
    out = registry.message_class(type_name)()
    any_msg.Unpack(out)
    return _dict(out)


def _body(request: Request) -> dict[str, Any]:
    body = parse_body(request.body)
    if not isinstance(body, dict):
        raise bad_request("Invalid JSON payload received. Expected an object.")
    return body


# paging: v2 lists everything of the parent; selectors filter; `limit`/`continue` page ----------
def _list_all(gateway: Gateway, method: str, parent: str, field: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        response = _dict(
            gateway.call(method, {"parent": parent, "pageSize": 1000, "pageToken": token})
        )
        items += response.get(field, [])
        token = response.get("nextPageToken", "")
        if not token:
            return items


def _page(request: Request, items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    terms = convert.label_selector(request.param("labelSelector"))
    chosen = [i for i in items if convert.selected(i["metadata"].get("labels", {}), terms)]
    try:
        limit = int(request.param("limit") or 0)
        token = request.param("continue")
        start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    except ValueError:
        raise bad_request("invalid limit or continue token", "continue") from None
    end = start + limit if limit > 0 else len(chosen)
    meta: dict[str, Any] = {}
    if end < len(chosen):
        meta["continue"] = base64.urlsafe_b64encode(str(end).encode()).decode()
    return {
        "apiVersion": convert.API_VERSION,
        "kind": f"{kind}List",
        "metadata": meta,
        "items": chosen[start:end],
    }


# jobs -------------------------------------------------------------------------------------------
def get_job(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    return convert.job(
        _dict(gateway.call(f"{JOBS}.GetJob", {"name": s.job(m.group("id"))})), s.project, s.region
    )


def list_jobs(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    jobs = _list_all(gateway, f"{JOBS}.ListJobs", s.parent, "jobs")
    return _page(request, [convert.job(j, s.project, s.region) for j in jobs], "Job")


def create_job(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    job = convert.job_v2(_body(request), s.project, s.region)
    job_id = job.pop("name").rsplit("/", 1)[1]
    job.pop("etag", None)
    op = gateway.call(f"{JOBS}.CreateJob", {"parent": s.parent, "jobId": job_id, "job": job})
    return convert.job(_unpack(op.response, "google.cloud.run.v2.Job"), s.project, s.region)


def replace_job(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    job = convert.job_v2(_body(request), s.project, s.region)
    if job["name"] != s.job(m.group("id")):
        raise bad_request("metadata.name must be the job in the URL", "metadata.name")
    op = gateway.call(f"{JOBS}.UpdateJob", {"job": job})
    return convert.job(_unpack(op.response, "google.cloud.run.v2.Job"), s.project, s.region)


def delete_job(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    op = gateway.call(f"{JOBS}.DeleteJob", {"name": s.job(m.group("id"))})
    job = _unpack(op.response, "google.cloud.run.v2.Job")
    return convert.status_ok(m.group("id"), "jobs", job.get("uid", ""))


def run_job(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    body: dict[str, Any] = {"name": s.job(m.group("id"))}
    overrides = convert.overrides(_body(request))
    if overrides:
        body["overrides"] = overrides
    op = gateway.call(f"{JOBS}.RunJob", body)
    return convert.execution(
        _unpack(op.metadata, "google.cloud.run.v2.Execution"), s.project, s.region
    )


# executions and tasks ---------------------------------------------------------------------------
def _execution_name(gateway: Gateway, s: _Scope, execution_id: str) -> str:
    """The v2 name of an execution v1 names by id alone: its job is in the id
    (``JOB-xxxxx``) but a job id may itself contain hyphens, so ask the list."""
    for ex in _list_all(
        gateway, f"{EXECUTIONS}.ListExecutions", f"{s.parent}/jobs/-", "executions"
    ):
        if ex["name"].rsplit("/", 1)[1] == execution_id:
            return str(ex["name"])
    raise RestError(grpc.StatusCode.NOT_FOUND, f"Execution {execution_id} does not exist.")


def get_execution(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    name = _execution_name(gateway, s, m.group("id"))
    return convert.execution(
        _dict(gateway.call(f"{EXECUTIONS}.GetExecution", {"name": name})), s.project, s.region
    )


def list_executions(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    items = _list_all(gateway, f"{EXECUTIONS}.ListExecutions", f"{s.parent}/jobs/-", "executions")
    items.sort(key=lambda e: e.get("createTime", ""), reverse=True)
    return _page(request, [convert.execution(e, s.project, s.region) for e in items], "Execution")


def delete_execution(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    name = _execution_name(gateway, s, m.group("id"))
    op = gateway.call(f"{EXECUTIONS}.DeleteExecution", {"name": name})
    ex = _unpack(op.response, "google.cloud.run.v2.Execution")
    return convert.status_ok(m.group("id"), "executions", ex.get("uid", ""))


def cancel_execution(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    name = _execution_name(gateway, s, m.group("id"))
    gateway.call(f"{EXECUTIONS}.CancelExecution", {"name": name})
    ex = _dict(gateway.call(f"{EXECUTIONS}.GetExecution", {"name": name}))
    return convert.execution(ex, s.project, s.region)


def _all_tasks(gateway: Gateway, s: _Scope) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for ex in _list_all(
        gateway, f"{EXECUTIONS}.ListExecutions", f"{s.parent}/jobs/-", "executions"
    ):
        tasks += _list_all(gateway, f"{TASKS}.ListTasks", ex["name"], "tasks")
    return tasks


def list_tasks(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    terms = convert.label_selector(request.param("labelSelector"))
    wanted = {
        next(iter(v))
        for k, op, v in terms
        if k == convert.EXECUTION_LABEL and op == "=" and len(v) == 1
    }
    if len(wanted) == 1:  # the usual case (gcloud ... tasks list --execution E): one execution
        name = _execution_name(gateway, s, wanted.pop())
        tasks = _list_all(gateway, f"{TASKS}.ListTasks", name, "tasks")
    else:
        tasks = _all_tasks(gateway, s)
    return _page(request, [convert.task(t, s.project, s.region) for t in tasks], "Task")


def get_task(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
    s = _Scope(request, m)
    task_id = m.group("id")
    execution_id = task_id.rsplit("-", 1)[0]  # tasks are EXECUTION-INDEX (names.task_id)
    name = f"{_execution_name(gateway, s, execution_id)}/tasks/{task_id}"
    return convert.task(
        _dict(gateway.call(f"{TASKS}.GetTask", {"name": name})), s.project, s.region
    )


# IAM of a job: Run v1 serves it as projects.locations.jobs.getIamPolicy/setIamPolicy on the
# regional host (https://cloud.google.com/run/docs/reference/rest/v1/projects.locations.jobs);
# the same path under Cloud Scheduler's host is a scheduler job, hence the host condition.
_V1_JOB = r"/v1/projects/(?P<ns>[^/]+)/locations/(?P<loc>[^/]+)/jobs/(?P<id>[^/:]+)"


def _job_iam(method: str) -> Handler:
    def handle(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
        resource = f"projects/{m.group('ns')}/locations/{m.group('loc')}/jobs/{m.group('id')}"
        body: dict[str, Any] = {} if request.method == "GET" else _body(request)
        version = request.param("options.requestedPolicyVersion")
        if version:
            body["options"] = {"requestedPolicyVersion": int(version)}
        return _dict(gateway.call(f"{JOBS}.{method}", body | {"resource": resource}))

    return handle


def routes() -> list[NativeRoute]:
    table: list[tuple[str, str, Handler]] = [
        ("GET", f"{_NS}/jobs", list_jobs),
        ("POST", f"{_NS}/jobs", create_job),
        ("GET", f"{_NS}/jobs/{_ID}", get_job),
        ("PUT", f"{_NS}/jobs/{_ID}", replace_job),
        ("DELETE", f"{_NS}/jobs/{_ID}", delete_job),
        ("POST", f"{_NS}/jobs/{_ID}:run", run_job),
        ("GET", f"{_NS}/executions", list_executions),
        ("GET", f"{_NS}/executions/{_ID}", get_execution),
        ("DELETE", f"{_NS}/executions/{_ID}", delete_execution),
        ("POST", f"{_NS}/executions/{_ID}:cancel", cancel_execution),
        ("GET", f"{_NS}/tasks", list_tasks),
        ("GET", f"{_NS}/tasks/{_ID}", get_task),
    ]
    iam = [
        ("GET", f"{_V1_JOB}:getIamPolicy", _job_iam("GetIamPolicy")),
        ("POST", f"{_V1_JOB}:setIamPolicy", _job_iam("SetIamPolicy")),
        ("POST", f"{_V1_JOB}:testIamPermissions", _job_iam("TestIamPermissions")),
    ]
    run = "run.googleapis.com"
    return [NativeRoute(verb, re.compile(pattern), fn, api=run) for verb, pattern, fn in table] + [
        NativeRoute(verb, re.compile(pattern), fn, api=run) for verb, pattern, fn in iam
    ]
