"""A call to an API that is disabled in its project is refused as Google refuses it:
PERMISSION_DENIED with an ``ErrorInfo`` of reason ``SERVICE_DISABLED`` (domain googleapis.com,
metadata service and consumer), over gRPC and REST alike; Service Usage enabling it lets the
same call through. A fresh project has Google's default APIs only."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import billing_v1, secretmanager_v1, service_usage_v1

from govctl.emulator.iam.service_usage import ENABLED_IN_NEW_PROJECTS
from govctl.emulator.server import Emulator
from govctl.gcp import clients

PROJECT = "fresh-project"
REGION = "europe-west2"


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator as `govctl emulator start` runs it: new projects get Google's defaults."""
    with Emulator(
        state_dir=tmp_path / "state", storage=False, new_project_apis=ENABLED_IN_NEW_PROJECTS
    ) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield emu


def _enable(*apis: str) -> None:
    clients.service_usage().batch_enable_services(
        request=service_usage_v1.BatchEnableServicesRequest(
            parent=f"projects/{PROJECT}", service_ids=list(apis)
        )
    ).result()


def _rest(
    emu: Emulator, method: str, path: str, host: str = "", user_project: str = ""
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.rest_port, timeout=30)
    headers = {"Host": host} if host else {}
    if user_project:
        headers["X-Goog-User-Project"] = user_project
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


def test_grpc_call_to_a_disabled_api_is_service_disabled_then_works_once_enabled(
    fresh: Emulator,
) -> None:
    sm = clients.secret_manager()
    parent = f"projects/{PROJECT}"
    with pytest.raises(exceptions.PermissionDenied) as caught:
        sm.list_secrets(parent=parent)
    err = caught.value
    # What google-api-core reads from grpc-status-details-bin: the ErrorInfo.
    assert err.reason == "SERVICE_DISABLED"
    assert err.domain == "googleapis.com"
    assert err.metadata["service"] == "secretmanager.googleapis.com"
    assert err.metadata["consumer"] == f"projects/{PROJECT}"
    assert err.message.startswith(
        f"Secret Manager API has not been used in project {PROJECT} before or it is disabled."
    )
    assert "secretmanager.googleapis.com/overview?project=" in err.message

    _enable("secretmanager.googleapis.com")
    assert list(sm.list_secrets(parent=parent)) == []
    sm.create_secret(
        parent=parent,
        secret_id="token",
        secret=secretmanager_v1.Secret(replication=secretmanager_v1.Replication(automatic={})),
    )


def test_google_default_apis_are_on_in_a_fresh_project_and_the_rest_off(fresh: Emulator) -> None:
    names = [
        "logging.googleapis.com", "monitoring.googleapis.com", "serviceusage.googleapis.com",
        "storage.googleapis.com", "run.googleapis.com", "cloudscheduler.googleapis.com",
        "cloudresourcemanager.googleapis.com", "secretmanager.googleapis.com",
    ]  # fmt: skip
    answer = clients.service_usage().batch_get_services(
        request=service_usage_v1.BatchGetServicesRequest(
            parent=f"projects/{PROJECT}", names=[f"projects/{PROJECT}/services/{n}" for n in names]
        )
    )
    state = {s.config.name: s.state.name for s in answer.services}
    assert [n for n in names if state[n] == "ENABLED"] == names[:4]
    # Logging is on by default: its calls go through without setup.
    assert list(clients.logging().list_log_entries(resource_names=[f"projects/{PROJECT}"])) == []


def test_rest_and_the_run_v1_view_answer_the_json_envelope_with_the_error_info(
    fresh: Emulator,
) -> None:
    code, body = _rest(fresh, "GET", f"/v2/projects/{PROJECT}/locations/{REGION}/jobs")
    assert code == 403
    error = body["error"]
    assert error["status"] == "PERMISSION_DENIED"
    (info,) = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["domain"]) == ("SERVICE_DISABLED", "googleapis.com")
    assert info["metadata"]["service"] == "run.googleapis.com"
    assert info["metadata"]["consumer"] == f"projects/{PROJECT}"
    assert error["message"].startswith("Cloud Run Admin API has not been used in project")

    # gcloud's view of the same jobs (Run v1 on the regional host) is refused alike.
    code, body = _rest(
        fresh, "GET", f"/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs",
        host=f"{REGION}-run.googleapis.com",
    )  # fmt: skip
    assert code == 403 and body["error"]["details"][0]["reason"] == "SERVICE_DISABLED"

    _enable("run.googleapis.com")
    code, body = _rest(fresh, "GET", f"/v2/projects/{PROJECT}/locations/{REGION}/jobs")
    assert code == 200


def test_a_project_named_by_number_and_a_request_without_a_project(fresh: Emulator) -> None:
    number = (
        clients.service_usage()
        .get_service(request={"name": f"projects/{PROJECT}/services/run.googleapis.com"})
        .parent.removeprefix("projects/")
    )
    with pytest.raises(exceptions.PermissionDenied) as caught:
        list(clients.jobs().list_jobs(parent=f"projects/{number}/locations/{REGION}"))
    assert caught.value.metadata["consumer"] == f"projects/{number}"
    # The Billing Catalog names no project (services/…): nothing to gate.
    services = clients.catalog().list_services(request=billing_v1.ListServicesRequest())
    assert any(s.display_name == "Cloud Run" for s in services)


def test_disabling_an_api_again_refuses_its_calls(fresh: Emulator) -> None:
    _enable("run.googleapis.com")
    parent = f"projects/{PROJECT}/locations/{REGION}"
    assert list(clients.jobs().list_jobs(parent=parent)) == []
    clients.service_usage().disable_service(
        request={"name": f"projects/{PROJECT}/services/run.googleapis.com"}
    ).result()
    with pytest.raises(exceptions.PermissionDenied):
        clients.jobs().get_job(name=f"{parent}/jobs/x", retry=None)


def test_a_streamed_request_is_judged_by_its_first_message(fresh: Emulator) -> None:
    from google.cloud.logging_v2.types import TailLogEntriesRequest

    clients.service_usage().disable_service(
        request={"name": f"projects/{PROJECT}/services/logging.googleapis.com"}
    ).result()
    first = TailLogEntriesRequest(resource_names=[f"projects/{PROJECT}"])
    with pytest.raises(exceptions.PermissionDenied) as caught:
        next(iter(clients.logging().tail_log_entries(requests=iter([first]))))
    assert caught.value.reason == "SERVICE_DISABLED"


def test_a_client_based_api_is_charged_to_the_quota_project_the_call_names(
    fresh: Emulator,
) -> None:
    """Resource Manager charges the caller's quota project, not the project it reads: without
    one (gcloud's shared project stands in for a gcloud user) the call goes through; with an
    ``x-goog-user-project`` whose API is off, it is SERVICE_DISABLED for that project."""
    projects = clients.projects()
    assert projects.get_project(name=f"projects/{PROJECT}").project_id == PROJECT
    quota = [("x-goog-user-project", PROJECT)]
    with pytest.raises(exceptions.PermissionDenied) as caught:
        projects.get_project(name=f"projects/{PROJECT}", metadata=quota)
    assert caught.value.metadata["service"] == "cloudresourcemanager.googleapis.com"
    code, body = _rest(fresh, "GET", f"/v3/projects/{PROJECT}", user_project=PROJECT)
    assert code == 403 and body["error"]["details"][0]["reason"] == "SERVICE_DISABLED"

    _enable("cloudresourcemanager.googleapis.com")
    assert projects.get_project(name=f"projects/{PROJECT}", metadata=quota).project_id == PROJECT
