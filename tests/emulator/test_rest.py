"""The REST gateway: routing by the google.api.http rules, JSON transcoding, Google's error
envelope, streams, the HTTP-proxy request form gcloud sends, and the Run v1 view."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

import pytest
from google.cloud import run_v2
from google.cloud.logging_v2.types import LogEntry, WriteLogEntriesRequest

from govctl.emulator.rest import knative_convert, registry
from govctl.emulator.rest.gateway import Request
from govctl.emulator.rest.templates import compile_template
from govctl.emulator.server import Emulator
from govctl.gcp import clients

PROJECT = "demo-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SCHEDULE = {
    "name": f"{PARENT}/jobs/nightly",
    "schedule": "0 2 * * *",
    "timeZone": "Europe/London",
    "httpTarget": {"uri": "https://example.org/ping", "httpMethod": "POST"},
}


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    return emulator


def call(
    emu: Emulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    host: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.rest_port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(payload)
    return response.status, payload


# routing ----------------------------------------------------------------------------------------
def test_every_served_method_with_an_http_rule_is_routed_to_itself(emu: Emulator) -> None:
    gateway = emu._rest.gateway
    hosts = {s: api for api, services in registry.api_hosts().items() for s in services}
    hosts.pop("google.longrunning.Operations")
    checked = 0
    for name, rpc in gateway.rpcs.items():
        for rule in rpc.rules:
            verb = rule.WhichOneof("pattern")
            template = compile_template(getattr(rule, verb))
            path = _sample_path(template.text)
            # on the API's own host (gcloud's overrides), and on a bare address (curl)
            for host in (hosts.get(rpc.service, ""), "127.0.0.1"):
                route, _ = gateway._match(Request.of(verb.upper(), host, path))
                assert route.name == name, (name, host, path, route.name)
            checked += 1
    served = {r.service for r in gateway.rpcs.values()}
    # Every API the emulator serves has its REST face (streaming TailLogEntries included).
    assert {
        "google.cloud.run.v2.Jobs",
        "google.cloud.run.v2.Executions",
        "google.cloud.run.v2.Tasks",
        "google.cloud.scheduler.v1.CloudScheduler",
        "google.logging.v2.LoggingServiceV2",
        "google.cloud.resourcemanager.v3.Projects",
        "google.iam.admin.v1.IAM",
        "google.api.serviceusage.v1.ServiceUsage",
        "google.cloud.billing.v1.CloudCatalog",
        "google.cloud.billing.v1.CloudBilling",
        "google.devtools.artifactregistry.v1.ArtifactRegistry",
        "google.devtools.cloudbuild.v1.CloudBuild",
        "google.monitoring.v3.AlertPolicyService",
        "google.cloud.secretmanager.v1.SecretManagerService",
        "google.cloud.discoveryengine.v1.SearchService",
        "google.longrunning.Operations",
    } <= served
    unrouted = [n for n, r in gateway.rpcs.items() if not r.rules]
    assert unrouted == [], "served methods without a google.api.http rule"
    assert checked > 100


def _sample_path(text: str) -> str:
    """A concrete path for a template: each ``*`` a segment, ``**`` two."""
    import re

    def fill(m: re.Match[str]) -> str:
        inner = m.group(2) or "*"
        return inner.replace("**", "x/y").replace("*", "x")

    path = re.sub(r"\{([\w.]+)(?:=([^}]*))?\}", fill, text)
    return path.replace("/**", "/x/y").replace("/*", "/x")


def test_path_templates_follow_http_proto() -> None:
    t = compile_template("/v1/{name=operations/**}:cancel")
    assert t.match("/v1/operations/build/p/a%2Fb:cancel") == {"name": "operations/build/p/a%2Fb"}
    t = compile_template("/v1/projects/{project_id}/builds/{id}")
    assert t.match("/v1/projects/p/builds/a%2Fb") == {"project_id": "p", "id": "a/b"}
    assert t.match("/v1/projects/p/builds") is None
    t = compile_template("/v2/{job.name=projects/*/locations/*/jobs/*}")
    assert t.match("/v2/projects/p/locations/l/jobs/j") == {
        "job.name": "projects/p/locations/l/jobs/j"
    }
    assert t.match("/v2/projects/p/locations/l/jobs/j/x") is None


# transcoding ------------------------------------------------------------------------------------
def test_create_list_page_and_patch_with_query_parameters(emu: Emulator) -> None:
    for i in range(3):
        status, body = call(
            emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE | {"name": f"{PARENT}/jobs/s{i}"}
        )
        assert status == 200, body
        assert body["state"] == "ENABLED" and body["retryConfig"]["minBackoffDuration"] == "5s"
    status, page = call(emu, "GET", f"/v1/{PARENT}/jobs?pageSize=2&alt=json")
    assert status == 200 and len(page["jobs"]) == 2 and page["nextPageToken"]
    status, rest = call(
        emu, "GET", f"/v1/{PARENT}/jobs?page_size=2&pageToken={page['nextPageToken']}"
    )
    assert [j["name"] for j in rest["jobs"]] == [f"{PARENT}/jobs/s2"]
    # body: "job" with the name from the path and a FieldMask from the query.
    status, patched = call(
        emu,
        "PATCH",
        f"/v1/{PARENT}/jobs/s0?updateMask=schedule",
        {"schedule": "5 4 * * *", "timeZone": "UTC"},
    )
    assert status == 200, patched
    assert patched["schedule"] == "5 4 * * *" and patched["timeZone"] == "Europe/London"
    assert clients.scheduler().get_job(name=f"{PARENT}/jobs/s0").schedule == "5 4 * * *"


def test_long_running_operations_are_operation_json(emu: Emulator) -> None:
    job = {"template": {"template": {"containers": [{"image": "busybox", "command": ["true"]}]}}}
    status, op = call(emu, "POST", f"/v2/{PARENT}/jobs?jobId=j1&validateOnly=true", job)
    assert status == 200, op
    assert (
        op["done"] is True
        and op["response"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Job"
    )
    assert list(clients.jobs().list_jobs(parent=PARENT)) == []  # validate_only (a bool query)
    status, op = call(emu, "POST", f"/v2/{PARENT}/jobs?jobId=j1", job)
    assert op["response"]["generation"] == "1"  # int64 as a string
    assert op["response"]["terminalCondition"]["state"] == "CONDITION_SUCCEEDED"  # enum names
    assert op["response"]["template"]["template"]["timeout"] == "600s"  # Duration
    status, got = call(emu, "GET", f"/v2/{op['name']}")
    assert status == 200 and got["name"] == op["name"]


def test_errors_are_googles_envelope(emu: Emulator) -> None:
    status, body = call(emu, "GET", f"/v1/{PARENT}/jobs/missing")
    assert status == 404
    assert set(body["error"]) == {"code", "message", "status", "details"}
    assert body["error"]["status"] == "NOT_FOUND" and body["error"]["code"] == 404

    status, body = call(emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE | {"colour": "red"})
    assert status == 400
    assert (
        body["error"]["message"]
        == 'Invalid JSON payload received. Unknown name "colour": Cannot find field.'
    )
    assert body["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"

    status, body = call(emu, "POST", f"/v1/{PARENT}/jobs", raw=b"{not json")
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    status, body = call(emu, "GET", f"/v1/{PARENT}/jobs?colour=red")
    assert status == 400 and "Cannot bind query parameter" in body["error"]["message"]

    status, body = call(emu, "GET", "/v9/nothing/here")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    # A method Google declares for a served API but the emulator lacks: as over gRPC.
    status, body = call(emu, "GET", f"/v1/{PARENT}/repositories/r/packages")
    assert status == 501 and body["error"]["status"] == "UNIMPLEMENTED"
    # ALREADY_EXISTS and FAILED_PRECONDITION keep code.proto's HTTP mapping.
    call(emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE)
    assert call(emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE)[0] == 409


def test_alt_proto_and_pretty_print(emu: Emulator) -> None:
    call(emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE)
    status, raw = call(emu, "GET", f"/v1/{PARENT}/jobs/nightly?alt=proto")
    from google.cloud.scheduler_v1 import Job

    assert status == 200 and Job.deserialize(raw).schedule == "0 2 * * *"
    conn = http.client.HTTPConnection("127.0.0.1", emu.rest_port)
    conn.request("GET", f"/v1/{PARENT}/jobs/nightly?prettyPrint=false")
    assert b"\n" not in conn.getresponse().read().rstrip()
    # One keep-alive connection serves several requests.
    conn.request("GET", f"/v1/{PARENT}/jobs/nightly")
    assert conn.getresponse().status == 200
    conn.close()


# what gcloud sends through its proxy setting ------------------------------------------------------
def _raw(emu: Emulator, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", emu.rest_port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_absolute_form_requests_route_by_path_and_connect_is_refused(emu: Emulator) -> None:
    call(emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE)
    line = f"GET http://cloudscheduler.example:1/v1/{PARENT}/jobs/nightly?alt=json HTTP/1.1\r\n"
    out = _raw(emu, (line + "Host: cloudscheduler.example:1\r\nConnection: close\r\n\r\n").encode())
    assert out.startswith(b"HTTP/1.1 200") and b'"schedule": "0 2 * * *"' in out
    # Never a tunnel onward, to Google or anyone.
    out = _raw(
        emu,
        b"CONNECT oauth2.googleapis.com:443 HTTP/1.1\r\nHost: oauth2.googleapis.com:443\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 405") and b"does not tunnel" in out


# streams ----------------------------------------------------------------------------------------
def test_entries_tail_streams_a_json_array_and_ends_when_the_client_leaves(emu: Emulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emu.rest_port, timeout=30)
    conn.request(
        "POST", "/v2/entries:tail", body=json.dumps({"resourceNames": [f"projects/{PROJECT}"]})
    )
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.read1().startswith(b"[{}")  # the session is open
    logging_service = emu.service("logging")
    entry = LogEntry(log_name=f"projects/{PROJECT}/logs/test", text_payload="hello over REST")
    entry.resource.type = "global"
    clients.logging().write_log_entries(request=WriteLogEntriesRequest(entries=[entry]))
    seen = b""
    deadline = time.monotonic() + 10
    while b"hello over REST" not in seen:
        assert time.monotonic() < deadline
        seen += response.read1()
    assert logging_service._tailers
    conn.close()  # the client goes away: the tail session ends on the server too
    deadline = time.monotonic() + 10
    while logging_service._tailers:
        assert time.monotonic() < deadline, "the tail session outlived its client"
        time.sleep(0.05)


# the Run v1 (Knative) view ---------------------------------------------------------------------
def test_run_v1_view_round_trips_a_v2_job_unchanged(emu: Emulator) -> None:
    container = run_v2.Container(
        image="busybox",
        command=["sh"],
        args=["-c", "true"],
        env=[run_v2.EnvVar(name="A", value="1")],
        resources=run_v2.ResourceRequirements(limits={"cpu": "2", "memory": "4Gi"}),
    )
    job = run_v2.Job(
        labels={"team": "data"},
        template=run_v2.ExecutionTemplate(
            task_count=3,
            parallelism=2,
            template=run_v2.TaskTemplate(containers=[container], max_retries=1),
        ),
    )
    clients.jobs().create_job(parent=PARENT, job=job, job_id="ingest").result(timeout=10)
    host = f"{REGION}-run.googleapis.com"
    path = f"/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/ingest"
    status, v1 = call(emu, "GET", path, host=host)
    assert status == 200, v1
    assert v1["metadata"]["labels"]["team"] == "data"
    assert v1["status"]["conditions"][0] == {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": v1["status"]["conditions"][0]["lastTransitionTime"],
    }
    assert v1["status"]["observedGeneration"] == v1["metadata"]["generation"] == 1
    before = clients.jobs().get_job(name=f"{PARENT}/jobs/ingest")
    status, replaced = call(emu, "PUT", path, v1, host=host)
    assert status == 200, replaced
    after = clients.jobs().get_job(name=f"{PARENT}/jobs/ingest")
    assert after.generation == before.generation + 1
    for field in ("labels", "annotations", "template", "client", "launch_stage"):
        assert getattr(after, field) == getattr(before, field), field
    # A stale resourceVersion is refused (the v2 etag).
    assert call(emu, "PUT", path, v1, host=host)[0] == 409
    # Without a region in the host, the namespaces API is not served.
    assert call(emu, "GET", path)[0] == 400


def test_run_v1_label_selectors() -> None:
    terms = knative_convert.label_selector("run.googleapis.com/job = a,env in (x, y),!gone")
    assert knative_convert.selected({"run.googleapis.com/job": "a", "env": "y"}, terms)
    assert not knative_convert.selected({"run.googleapis.com/job": "b", "env": "y"}, terms)
    assert not knative_convert.selected(
        {"run.googleapis.com/job": "a", "env": "y", "gone": ""}, terms
    )
    assert knative_convert.label_selector("") == []


def test_the_rules_come_from_googleapis() -> None:
    assert registry.rules_source().startswith("https://github.com/googleapis/googleapis/tree/")
    (rule,) = registry.http_rules("google.cloud.run.v2.Jobs", "RunJob")
    assert rule.post == "/v2/{name=projects/*/locations/*/jobs/*}:run" and rule.body == "*"
    ops = {r.get for r in registry.http_rules("google.longrunning.Operations", "GetOperation")}
    assert "/v2/{name=projects/*/locations/*/operations/*}" in ops  # run_v2.yaml
    assert "/v1/{name=operations/**}" in ops  # cloudbuild_v1.yaml


def test_the_gateway_stops_with_the_emulator_and_frees_its_port() -> None:
    emu = Emulator(storage=False).start()
    port = emu.rest_port
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/v9/x")
    conn.getresponse().read()  # an idle keep-alive connection stays open ...
    emu.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    again = Emulator(storage=False, rest_port=port).start()  # ... and the port is free at once
    assert again.rest_port == port
    again.stop()


def test_the_host_names_the_api_as_at_google(emu: Emulator) -> None:
    # /v1/projects/P/locations/L/jobs/J is a Cloud Scheduler job on its host and a Cloud Run
    # job (v1 projects.locations.jobs) on Run's; gcloud's overrides name each API's host.
    call(emu, "POST", f"/v1/{PARENT}/jobs", SCHEDULE)
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(containers=[run_v2.Container(image="busybox")])
        )
    )
    clients.jobs().create_job(parent=PARENT, job=job, job_id="nightly").result(timeout=10)
    path = f"/v1/{PARENT}/jobs/nightly"
    status, body = call(
        emu, "GET", path, host=f"cloudscheduler.googleapis.com.localhost:{emu.rest_port}"
    )
    assert status == 200 and body["schedule"] == "0 2 * * *"
    status, body = call(emu, "GET", f"{path}:getIamPolicy", host="run.googleapis.com.localhost")
    assert status == 200 and body["etag"]
    # Scheduler's host has no such method: its GetJob sees a malformed name.
    status, _ = call(emu, "GET", f"{path}:getIamPolicy", host="cloudscheduler.googleapis.com")
    assert status == 400
    # Run's host does not serve Scheduler's methods.
    status, body = call(emu, "GET", path, host="us-central1-run.googleapis.com.localhost")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
