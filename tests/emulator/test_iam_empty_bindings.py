"""A binding whose last member is removed is dropped, not refused, by every policy the
emulator keeps (Resource Manager's behaviour: hashicorp/terraform-provider-google#4439).

Each test is the read-modify-write a client makes to revoke a role: read the policy, remove the
member, write the policy back with the now-empty binding in it.
"""

from __future__ import annotations

from typing import Any

from google.cloud import secretmanager_v1 as sm

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import job_spec
from tests.support.cloud import service_account

PROJECT = "demo-project"
SA = f"runner@{PROJECT}.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{SA}"
ROLE = "roles/secretmanager.secretAccessor"


def _revoke(client: Any, resource: str, role: str, member: str) -> Any:
    policy = client.get_iam_policy(request={"resource": resource})
    for binding in policy.bindings:
        if binding.role == role:
            binding.members.remove(member)
    return client.set_iam_policy(request={"resource": resource, "policy": policy})


def _grant(client: Any, resource: str, role: str, member: str) -> None:
    policy = client.get_iam_policy(request={"resource": resource})
    policy.bindings.add(role=role, members=[member])
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def _roles(policy: Any) -> list[str]:
    return [b.role for b in policy.bindings]


def test_project_policy_drops_a_binding_left_without_members(emulator: Emulator) -> None:
    service_account(PROJECT, "runner")
    rm, resource = clients.projects(), f"projects/{PROJECT}"
    _grant(rm, resource, "roles/logging.logWriter", MEMBER)
    stored = _revoke(rm, resource, "roles/logging.logWriter", MEMBER)
    assert "roles/logging.logWriter" not in _roles(stored)
    assert "roles/logging.logWriter" not in _roles(rm.get_iam_policy(resource=resource))


def test_job_policy_drops_a_binding_left_without_members(emulator: Emulator) -> None:
    service_account(PROJECT, "runner")
    jobs = clients.jobs()
    job = jobs.create_job(
        parent=f"projects/{PROJECT}/locations/europe-west2", job_id="job", job=job_spec()
    ).result(timeout=5)
    _grant(jobs, job.name, "roles/run.invoker", MEMBER)
    stored = _revoke(jobs, job.name, "roles/run.invoker", MEMBER)
    assert _roles(stored) == []
    assert _roles(jobs.get_iam_policy(request={"resource": job.name})) == []


def test_secret_policy_drops_a_binding_left_without_members(emulator: Emulator) -> None:
    service_account(PROJECT, "runner")
    client = clients.secret_manager()
    secret = client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id="token",
        secret=sm.Secret(replication=sm.Replication(automatic=sm.Replication.Automatic())),
    ).name
    _grant(client, secret, ROLE, MEMBER)
    stored = _revoke(client, secret, ROLE, MEMBER)
    assert _roles(stored) == []
