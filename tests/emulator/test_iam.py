"""Conformance of the emulated IAM surfaces, driven only through the official clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import iam_admin_v1, service_usage_v1
from google.iam.v1 import iam_policy_pb2, policy_pb2

from govctl.emulator.iam import roles
from govctl.emulator.iam.projects import DEFAULT_OWNER
from govctl.emulator.iam.service_usage import ENABLED_IN_NEW_PROJECTS, SERVICE_CATALOG
from govctl.emulator.server import Emulator
from govctl.gcp import clients

PROJECT = "demo-project"
RESOURCE = f"projects/{PROJECT}"


# --- projects and their IAM policy -----------------------------------------------------------


def test_get_project_returns_an_active_project(emulator: Emulator) -> None:
    project = clients.projects().get_project(name=RESOURCE)
    assert project.project_id == PROJECT
    assert project.name.startswith("projects/") and project.name[9:].isdigit()
    assert project.state.name == "ACTIVE"
    # The number it hands out names the same project.
    again = clients.projects().get_project(name=project.name)
    assert again.project_id == PROJECT


def test_get_project_rejects_an_invalid_id(emulator: Emulator) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        clients.projects().get_project(name="projects/Bad_Project")


def test_default_policy_makes_the_emulator_user_owner(emulator: Emulator) -> None:
    policy = clients.projects().get_iam_policy(resource=RESOURCE)
    number = clients.projects().get_project(name=RESOURCE).name.split("/")[1]
    assert policy.version == 1
    assert policy.etag
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/owner", [DEFAULT_OWNER]),
        (
            "roles/cloudscheduler.serviceAgent",
            [f"serviceAccount:service-{number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"],
        ),
    ]


def test_set_policy_round_trips_and_changes_the_etag(emulator: Emulator) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=RESOURCE)
    member = f"serviceAccount:{_create_sa('runner').email}"
    policy.bindings.add(role="roles/run.invoker", members=[member, member])
    updated = rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})
    assert updated.etag != policy.etag
    invoker = [b for b in updated.bindings if b.role == "roles/run.invoker"]
    assert [list(b.members) for b in invoker] == [[member]]  # de-duplicated
    assert rm.get_iam_policy(resource=RESOURCE) == updated


def test_set_policy_with_a_stale_etag_is_aborted(emulator: Emulator) -> None:
    rm = clients.projects()
    first = rm.get_iam_policy(resource=RESOURCE)
    first.bindings.add(role="roles/viewer", members=["user:a@example.com"])
    rm.set_iam_policy(request={"resource": RESOURCE, "policy": first})
    first.bindings.add(role="roles/editor", members=["user:b@example.com"])
    with pytest.raises(exceptions.Aborted, match="concurrent policy changes"):
        rm.set_iam_policy(request={"resource": RESOURCE, "policy": first})


@pytest.mark.parametrize(
    "binding",
    [
        policy_pb2.Binding(role="roles/run.invokr", members=["user:a@example.com"]),
        policy_pb2.Binding(role="roles/viewer", members=["a@example.com"]),
        policy_pb2.Binding(role="roles/viewer", members=["serviceAccount:not-an-email"]),
    ],
)
def test_set_policy_rejects_unknown_roles_and_bad_members(
    emulator: Emulator, binding: policy_pb2.Binding
) -> None:
    policy = policy_pb2.Policy(bindings=[binding])
    with pytest.raises(exceptions.InvalidArgument):
        clients.projects().set_iam_policy(request={"resource": RESOURCE, "policy": policy})


def test_conditional_binding_needs_version_3(emulator: Emulator) -> None:
    binding = policy_pb2.Binding(role="roles/viewer", members=["user:a@example.com"])
    binding.condition.expression = "request.time < timestamp('2030-01-01T00:00:00Z')"
    binding.condition.title = "until 2030"
    # Any version but 3, the default 0 too (cloud.google.com/iam/docs/policies#versions).
    for version in (0, 1):
        with pytest.raises(exceptions.InvalidArgument):
            clients.projects().set_iam_policy(
                request={
                    "resource": RESOURCE,
                    "policy": policy_pb2.Policy(version=version, bindings=[binding]),
                }
            )
    stored = clients.projects().set_iam_policy(
        request={"resource": RESOURCE, "policy": policy_pb2.Policy(version=3, bindings=[binding])}
    )
    assert stored.version == 3


def test_test_iam_permissions_returns_what_the_caller_holds(emulator: Emulator) -> None:
    rm = clients.projects()
    wanted = ["run.jobs.run", "resourcemanager.projects.setIamPolicy", "storage.objects.get"]
    held = rm.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=RESOURCE, permissions=wanted)
    )
    assert list(held.permissions) == wanted  # the owner holds everything
    # Demote the emulator user to viewer: only the read permission is left.
    policy = policy_pb2.Policy(
        bindings=[policy_pb2.Binding(role="roles/viewer", members=[DEFAULT_OWNER])]
    )
    rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})
    held = rm.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=RESOURCE, permissions=wanted)
    )
    assert list(held.permissions) == ["storage.objects.get"]
    with pytest.raises(exceptions.InvalidArgument):
        rm.test_iam_permissions(
            request=iam_policy_pb2.TestIamPermissionsRequest(
                resource=RESOURCE, permissions=["not a permission"]
            )
        )


def test_allows_reads_roles_members_and_conditions() -> None:
    sa = "serviceAccount:Runner@p.iam.gserviceaccount.com"
    policy = policy_pb2.Policy(
        bindings=[
            policy_pb2.Binding(
                role="roles/run.invoker",
                members=["serviceAccount:runner@p.iam.gserviceaccount.com"],
            ),
            policy_pb2.Binding(role="roles/run.admin", members=["user:x@example.com"]),
        ]
    )
    assert roles.allows(policy, sa, "run.jobs.run")  # emails compare case-insensitively
    assert not roles.allows(policy, sa, "run.jobs.runWithOverrides")
    assert roles.allows(policy, "user:x@example.com", "run.jobs.setIamPolicy")
    assert not roles.allows(policy, "user:y@example.com", "run.jobs.run")
    conditional = policy_pb2.Binding(role="roles/owner", members=["user:y@example.com"])
    conditional.condition.expression = "true"
    policy.bindings.append(conditional)
    assert not roles.allows(policy, "user:y@example.com", "run.jobs.run")
    assert roles.role_grants("roles/editor", "run.jobs.run")
    assert not roles.role_grants("roles/editor", "resourcemanager.projects.setIamPolicy")
    assert roles.role_grants("roles/viewer", "run.jobs.get")
    assert not roles.role_grants("roles/viewer", "run.jobs.run")


# --- service accounts --------------------------------------------------------------------------


def _create_sa(account_id: str = "ingest-runner") -> iam_admin_v1.ServiceAccount:
    return clients.iam().create_service_account(
        request={
            "name": RESOURCE,
            "account_id": account_id,
            "service_account": {"display_name": "Ingestion runner"},
        }
    )


def test_service_account_create_get_list(emulator: Emulator) -> None:
    sa = _create_sa()
    email = f"ingest-runner@{PROJECT}.iam.gserviceaccount.com"
    assert sa.email == email
    assert sa.name == f"{RESOURCE}/serviceAccounts/{email}"
    assert sa.project_id == PROJECT
    assert sa.unique_id.isdigit() and len(sa.unique_id) == 21
    assert sa.display_name == "Ingestion runner"
    iam = clients.iam()
    assert iam.get_service_account(name=sa.name) == sa
    assert iam.get_service_account(name=f"projects/-/serviceAccounts/{sa.unique_id}") == sa
    _create_sa("scheduler-caller")
    pager = iam.list_service_accounts(request={"name": RESOURCE, "page_size": 1})
    assert [a.email.split("@")[0] for a in pager] == ["ingest-runner", "scheduler-caller"]
    pages = list(iam.list_service_accounts(request={"name": RESOURCE, "page_size": 1}).pages)
    assert [len(p.accounts) for p in pages] == [1, 1]
    assert pages[0].next_page_token and not pages[1].next_page_token


def test_service_account_duplicate_and_missing(emulator: Emulator) -> None:
    _create_sa()
    with pytest.raises(exceptions.AlreadyExists):
        _create_sa()
    with pytest.raises(exceptions.NotFound):
        clients.iam().get_service_account(
            name=f"{RESOURCE}/serviceAccounts/nobody@{PROJECT}.iam.gserviceaccount.com"
        )


@pytest.mark.parametrize(
    "account_id", ["short", "Upper-case1", "1starts-digit", "ends-hyphen-", "a" * 31]
)
def test_service_account_id_is_validated(emulator: Emulator, account_id: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        _create_sa(account_id)


# --- service usage -----------------------------------------------------------------------------


def _enabled(parent: str = RESOURCE) -> list[str]:
    pager = clients.service_usage().list_services(
        request={"parent": parent, "filter": "state:ENABLED"}
    )
    return [s.config.name for s in pager]


def test_new_project_has_only_the_default_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = Emulator(state_dir=tmp_path / "fresh", storage=False,
                     new_project_apis=ENABLED_IN_NEW_PROJECTS)  # fmt: skip
    with fresh:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", fresh.grpc_address)
        _check_new_project_services()


def _check_new_project_services() -> None:
    assert _enabled() == [
        "logging.googleapis.com",
        "monitoring.googleapis.com",
        "serviceusage.googleapis.com",
        "storage.googleapis.com",
    ]
    su = clients.service_usage()
    run = su.get_service(request={"name": f"{RESOURCE}/services/run.googleapis.com"})
    assert run.state == service_usage_v1.State.DISABLED
    assert run.config.title == "Cloud Run Admin API"
    with pytest.raises(exceptions.NotFound):
        su.get_service(request={"name": f"{RESOURCE}/services/nonesuch.googleapis.com"})
    with pytest.raises(exceptions.InvalidArgument):
        su.list_services(request={"parent": RESOURCE, "filter": "name:run"})


def test_enable_and_batch_enable(emulator: Emulator) -> None:
    su = clients.service_usage()
    result = su.enable_service(request={"name": f"{RESOURCE}/services/run.googleapis.com"}).result(
        timeout=5
    )
    assert result.service.state == service_usage_v1.State.ENABLED
    batch = su.batch_enable_services(
        request={
            "parent": RESOURCE,
            "service_ids": ["cloudscheduler.googleapis.com", "iam.googleapis.com"],
        }
    ).result(timeout=5)
    assert sorted(s.config.name for s in batch.services) == [
        "cloudscheduler.googleapis.com",
        "iam.googleapis.com",
    ]
    assert {"run.googleapis.com", "cloudscheduler.googleapis.com", "iam.googleapis.com"} <= set(
        _enabled()
    )
    with pytest.raises(exceptions.NotFound):
        su.batch_enable_services(
            request={"parent": RESOURCE, "service_ids": ["bogus.googleapis.com"]}
        )
    disabled = su.disable_service(
        request={"name": f"{RESOURCE}/services/iam.googleapis.com"}
    ).result(timeout=5)
    assert disabled.service.state == service_usage_v1.State.DISABLED
    got = su.batch_get_services(
        request={"parent": RESOURCE, "names": [f"{RESOURCE}/services/run.googleapis.com"]}
    )
    assert [s.state for s in got.services] == [service_usage_v1.State.ENABLED]


def test_list_services_pages(emulator: Emulator) -> None:
    su = clients.service_usage()
    pager = su.list_services(request={"parent": RESOURCE, "page_size": 1})
    pages = list(pager.pages)
    assert len(pages) == len(SERVICE_CATALOG) and all(len(p.services) == 1 for p in pages)
    names = [p.services[0].config.name for p in pages]
    assert names == sorted(names)


def test_iam_state_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state) as emu:
        for k, v in emu.env().items():
            monkeypatch.setenv(k, v)
        _create_sa()
        clients.service_usage().enable_service(
            request={"name": f"{RESOURCE}/services/run.googleapis.com"}
        ).result(timeout=5)
        policy = clients.projects().get_iam_policy(resource=RESOURCE)
        policy.bindings.add(role="roles/run.invoker", members=["user:a@example.com"])
        saved = clients.projects().set_iam_policy(request={"resource": RESOURCE, "policy": policy})
    with Emulator(state_dir=state) as emu:
        for k, v in emu.env().items():
            monkeypatch.setenv(k, v)
        assert clients.projects().get_iam_policy(resource=RESOURCE) == saved
        assert "run.googleapis.com" in _enabled()
        accounts = list(clients.iam().list_service_accounts(name=RESOURCE))
        assert [a.email for a in accounts] == [f"ingest-runner@{PROJECT}.iam.gserviceaccount.com"]
        # The stale-etag check still holds against the restored etag.
        with pytest.raises(exceptions.Aborted):
            clients.projects().set_iam_policy(request={"resource": RESOURCE, "policy": policy})


def test_a_service_account_a_policy_adds_must_exist(emulator: Emulator) -> None:
    """Google: INVALID_ARGUMENT "Service account EMAIL does not exist." (as gcloud prints it,
    GoogleCloudPlatform/generative-ai#944); a service agent is Google's and let through."""
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=RESOURCE)
    missing = f"nobody-here@{PROJECT}.iam.gserviceaccount.com"
    policy.bindings.add(role="roles/logging.logWriter", members=[f"serviceAccount:{missing}"])
    with pytest.raises(exceptions.InvalidArgument, match=f"Service account {missing} does not"):
        rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})

    agent = "serviceAccount:service-1@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
    made = _create_sa("leaves-soon")
    policy = rm.get_iam_policy(resource=RESOURCE)
    policy.bindings.add(
        role="roles/logging.logWriter", members=[agent, f"serviceAccount:{made.email}"]
    )
    rm.set_iam_policy(request={"resource": RESOURCE, "policy": policy})
    # A member the policy holds already is not checked again: the emulator does not rewrite a
    # deleted account's member to deleted:serviceAccount:… as Google does.
    clients.iam().delete_service_account(name=made.name)
    again = rm.get_iam_policy(resource=RESOURCE)
    again.bindings.add(role="roles/viewer", members=["user:a@example.com"])
    rm.set_iam_policy(request={"resource": RESOURCE, "policy": again})
