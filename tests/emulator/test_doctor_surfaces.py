"""What `govctl doctor` reads from the loopback cloud, through the official clients only:
project billing, testIamPermissions on service accounts, Cloud Scheduler's service agent,
and tasks killed for exceeding their memory limit."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import billing_v1, iam_admin_v1, scheduler_v1
from google.iam.v1 import iam_policy_pb2

from govctl.emulator.iam.projects import SCHEDULER_AGENT_ROLE
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import PARENT, create, job_spec, wait_execution

PROJECT = "demo-project"
SYSTEM_LOG = "run.googleapis.com%2Fvarlog%2Fsystem"

# Grows past 512 MiB in 64 MiB steps (each filled, so the pages are really used), then waits.
HOG = """
import time
held = []
for _ in range(16):
    held.append(b"x" * (64 << 20))
    time.sleep(0.03)
print("still alive", flush=True)
time.sleep(30)
"""


def test_a_new_project_has_billing_and_tests_can_disable_it(emulator: Emulator) -> None:
    client = clients.billing()
    info = client.get_project_billing_info(name=f"projects/{PROJECT}")
    assert info.billing_enabled
    assert info.name == f"projects/{PROJECT}/billingInfo"
    assert info.billing_account_name.startswith("billingAccounts/")
    off = client.update_project_billing_info(
        name=f"projects/{PROJECT}",
        project_billing_info=billing_v1.ProjectBillingInfo(billing_account_name=""),
    )
    assert not off.billing_enabled
    assert not client.get_project_billing_info(name=f"projects/{PROJECT}").billing_enabled
    with pytest.raises(exceptions.InvalidArgument, match="billingAccounts/XXXXXX"):
        client.update_project_billing_info(
            name=f"projects/{PROJECT}",
            project_billing_info=billing_v1.ProjectBillingInfo(billing_account_name="nope"),
        )


def test_test_iam_permissions_on_a_service_account(emulator: Emulator) -> None:
    iam = clients.iam()
    sa = iam.create_service_account(
        name=f"projects/{PROJECT}",
        account_id="ingest-sa",
        service_account=iam_admin_v1.ServiceAccount(display_name="x"),
    )
    wanted = ["iam.serviceAccounts.actAs", "iam.serviceAccounts.get"]
    answer = iam.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=sa.name, permissions=wanted)
    )
    assert list(answer.permissions) == wanted  # the caller owns the project
    # Without roles/owner (or iam.serviceAccountUser) the caller may not act as the account.
    projects = clients.projects()
    policy = projects.get_iam_policy(resource=f"projects/{PROJECT}")
    for b in policy.bindings:
        if b.role == "roles/owner":
            b.role = "roles/viewer"
    projects.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    answer = iam.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=sa.name, permissions=wanted)
    )
    assert list(answer.permissions) == ["iam.serviceAccounts.get"]
    with pytest.raises(exceptions.NotFound):
        iam.test_iam_permissions(
            request=iam_policy_pb2.TestIamPermissionsRequest(
                resource=f"projects/{PROJECT}/serviceAccounts/nobody@x.iam.gserviceaccount.com",
                permissions=wanted,
            )
        )


def test_scheduler_attempts_fail_without_the_service_agent_role(emulator: Emulator) -> None:
    projects = clients.projects()
    number = projects.get_project(name=f"projects/{PROJECT}").name.split("/")[1]
    agent = f"serviceAccount:service-{number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
    policy = projects.get_iam_policy(resource=f"projects/{PROJECT}")
    assert any(b.role == SCHEDULER_AGENT_ROLE and agent in b.members for b in policy.bindings)

    sa = clients.iam().create_service_account(
        name=f"projects/{PROJECT}", account_id="ingest-sa", service_account={}
    )
    create(clients.jobs(), "job", job_spec())
    sched = clients.scheduler()
    job = sched.create_job(
        parent=PARENT,
        job=scheduler_v1.Job(
            name=f"{PARENT}/jobs/daily",
            schedule="0 2 * * *",
            http_target=scheduler_v1.HttpTarget(
                uri=f"https://run.googleapis.com/v2/{PARENT}/jobs/job:run",
                http_method=scheduler_v1.HttpMethod.POST,
                oauth_token=scheduler_v1.OAuthToken(service_account_email=sa.email),
            ),
        ),
    )
    # The service account holds nothing yet.
    assert sched.run_job(name=job.name).status.code == 7  # PERMISSION_DENIED: run.jobs.run
    del policy.bindings[:]
    policy.bindings.add(role="roles/owner", members=["user:emulator@example.com"])
    policy.bindings.add(role="roles/run.invoker", members=[f"serviceAccount:{sa.email}"])
    projects.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    after = sched.run_job(name=job.name)
    assert after.status.code == 7
    assert "service agent" in after.status.message
    assert SCHEDULER_AGENT_ROLE in after.status.message
    policy = projects.get_iam_policy(resource=f"projects/{PROJECT}")
    policy.bindings.add(role=SCHEDULER_AGENT_ROLE, members=[agent])
    projects.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    assert sched.run_job(name=job.name).status.code == 0


def test_a_task_over_its_memory_limit_is_killed_with_cloud_runs_log_line(
    emulator: Emulator,
) -> None:
    jobs, executions = clients.jobs(), clients.executions()
    job = create(jobs, "hog", job_spec(HOG, memory="512Mi"))
    name = jobs.run_job(name=job.name).metadata.name
    execution = wait_execution(executions, name, timeout=20)
    assert execution.failed_count == 1
    (task,) = clients.tasks().list_tasks(parent=name)
    # Killed by the system: the signal, not an exit code (TaskAttemptResult: "at most one of
    # exit_code or term_signal will be set").
    assert (task.last_attempt_result.term_signal, task.last_attempt_result.exit_code) == (9, 0)
    entries = list(
        clients.logging().list_log_entries(
            request={
                "resource_names": [f"projects/{PROJECT}"],
                "filter": f'logName="projects/{PROJECT}/logs/{SYSTEM_LOG}"',
            }
        )
    )
    (entry,) = entries
    assert entry.severity == 500  # ERROR
    assert entry.text_payload.startswith("Memory limit of 512 MiB exceeded with ")
    assert "MiB used. Consider increasing the memory limit" in entry.text_payload
    assert entry.labels["run.googleapis.com/execution_name"] == name.rsplit("/", 1)[1]
    assert entry.resource.labels["job_name"] == "hog"


def test_a_task_within_its_limit_is_not_killed(emulator: Emulator) -> None:
    jobs, executions = clients.jobs(), clients.executions()
    job = create(jobs, "small", job_spec("x = b'x' * (100 << 20); print(len(x))", memory="512Mi"))
    name = jobs.run_job(name=job.name).metadata.name
    assert wait_execution(executions, name).succeeded_count == 1
