"""An id or name with a trailing newline is INVALID_ARGUMENT, as Google answers it.

Python's ``$`` matches before a final newline, so ``re.match(r"^[a-z]+$", "job\\n")``
matches; every id check of the emulator uses a full match (issue 14, item 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import iam_admin_v1, run_v2, scheduler_v1
from google.iam.v1 import iam_policy_pb2, policy_pb2

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL, PARENT, create, job_spec

PROJECT = "demo-project"


def _create_job(job_id: str) -> object:
    return (
        clients.jobs()
        .create_job(parent=PARENT, job_id=job_id, job=job_spec())
        .result(polling=FAST_POLL)
    )


def _job_env(name: str) -> object:
    spec = job_spec()
    spec.template.template.containers[0].env = [run_v2.EnvVar(name=name, value="x")]
    return (
        clients.jobs()
        .create_job(parent=PARENT, job_id="envjob", job=spec)
        .result(polling=FAST_POLL)
    )


def _job_policy(role: str = "roles/run.invoker", member: str = "user:a@example.com") -> object:
    name = create(clients.jobs(), "policyjob").name
    policy = policy_pb2.Policy(bindings=[policy_pb2.Binding(role=role, members=[member])])
    return clients.jobs().set_iam_policy(
        request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy)
    )


def _schedule(job_id: str) -> object:
    parent = f"projects/{PROJECT}/locations/europe-west2"
    job = scheduler_v1.Job(
        name=f"{parent}/jobs/{job_id}",
        schedule="0 2 * * *",
        http_target=scheduler_v1.HttpTarget(uri="https://example.org/"),
    )
    return clients.scheduler().create_job(parent=parent, job=job)


def _account(account_id: str) -> object:
    return clients.iam().create_service_account(
        request=iam_admin_v1.CreateServiceAccountRequest(
            name=f"projects/{PROJECT}", account_id=account_id
        )
    )


def _project_permission(permission: str) -> object:
    return clients.projects().test_iam_permissions(
        request={"resource": f"projects/{PROJECT}", "permissions": [permission]}
    )


CASES: dict[str, Callable[[], Any]] = {
    "run job_id": lambda: _create_job("ingest\n"),
    "run job name": lambda: clients.jobs().get_job(name=f"{PARENT}/jobs/ingest\n"),
    "run execution name": lambda: clients.executions().get_execution(
        name=f"{PARENT}/jobs/ingest/executions/ingest-abcde\n"
    ),
    "run parent": lambda: list(clients.jobs().list_jobs(parent=f"{PARENT}\n")),
    "run env name": lambda: _job_env("FEED\n"),
    "run policy role": lambda: _job_policy(role="roles/run.invoker\n"),
    "run policy member": lambda: _job_policy(member="user:a@example.com\n"),
    "scheduler job id": lambda: _schedule("daily\n"),
    "service account id": lambda: _account("robot-account\n"),
    "project id": lambda: clients.projects().get_project(name=f"projects/{PROJECT}\n"),
    "project permission": lambda: _project_permission("run.jobs.get\n"),
    "secret id": lambda: clients.secret_manager().create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": "token\n",
            "secret": {"replication": {"automatic": {}}},
        }
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_trailing_newline_is_invalid_argument(emulator: Emulator, case: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        CASES[case]()
