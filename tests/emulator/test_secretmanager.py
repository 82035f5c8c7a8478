"""Secret Manager v1 in the loopback cloud, through the official client only; and Cloud Run
reading secrets into a task's environment as its service account."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.cloud import secretmanager_v1 as sm

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import condition, create, job_spec, wait_execution

PROJECT = "demo-project"
SA = "job-sa@demo-project.iam.gserviceaccount.com"
AUTOMATIC = sm.Replication(automatic=sm.Replication.Automatic())


def _create_account(email: str = SA) -> None:
    account_id, _, rest = email.partition("@")
    clients.iam().create_service_account(
        request={"name": f"projects/{rest.split('.')[0]}", "account_id": account_id}
    )


@pytest.fixture
def client(emulator: Emulator) -> sm.SecretManagerServiceClient:
    _create_account()
    return clients.secret_manager()


def _secret(client: sm.SecretManagerServiceClient, secret_id: str = "github-token") -> str:
    created = client.create_secret(
        parent=f"projects/{PROJECT}", secret_id=secret_id, secret=sm.Secret(replication=AUTOMATIC)
    )
    return str(created.name)


def _grant(client: sm.SecretManagerServiceClient, name: str, member: str) -> None:
    policy = client.get_iam_policy(request={"resource": name})
    policy.bindings.add(role="roles/secretmanager.secretAccessor", members=[member])
    client.set_iam_policy(request={"resource": name, "policy": policy})


def test_secrets_and_versions_round_trip(client: sm.SecretManagerServiceClient) -> None:
    name = _secret(client)
    assert name == f"projects/{PROJECT}/secrets/github-token"
    with pytest.raises(exceptions.AlreadyExists):
        _secret(client)
    with pytest.raises(exceptions.InvalidArgument):
        client.create_secret(
            parent=f"projects/{PROJECT}",
            secret_id="no/slash",
            secret=sm.Secret(replication=AUTOMATIC),
        )
    with pytest.raises(exceptions.InvalidArgument, match="replication"):
        client.create_secret(parent=f"projects/{PROJECT}", secret_id="x", secret=sm.Secret())

    v1 = client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"one"))
    v2 = client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"two"))
    assert (v1.name, v2.name) == (f"{name}/versions/1", f"{name}/versions/2")
    assert v2.state == sm.SecretVersion.State.ENABLED
    assert client.access_secret_version(name=f"{name}/versions/latest").payload.data == b"two"
    assert client.access_secret_version(name=f"{name}/versions/1").payload.data == b"one"
    listed = [v.name for v in client.list_secret_versions(parent=name)]
    assert listed == [v2.name, v1.name]  # newest first
    with pytest.raises(exceptions.InvalidArgument, match="Checksum"):
        client.add_secret_version(
            parent=name, payload=sm.SecretPayload(data=b"three", data_crc32c=12345)
        )

    # latest is the newest *created* version: disabled, it cannot be accessed.
    client.disable_secret_version(name=v2.name)
    with pytest.raises(exceptions.FailedPrecondition, match="DISABLED"):
        client.access_secret_version(name=f"{name}/versions/latest")
    enabled = client.list_secret_versions(request={"parent": name, "filter": "state:ENABLED"})
    assert [v.name for v in enabled] == [v1.name]
    client.enable_secret_version(name=v2.name)
    client.destroy_secret_version(name=v1.name)
    with pytest.raises(exceptions.FailedPrecondition, match="DESTROYED"):
        client.access_secret_version(name=v1.name)
    with pytest.raises(exceptions.FailedPrecondition):
        client.enable_secret_version(name=v1.name)
    with pytest.raises(exceptions.NotFound):
        client.get_secret_version(name=f"{name}/versions/9")

    assert [s.name for s in client.list_secrets(parent=f"projects/{PROJECT}")] == [name]
    client.delete_secret(name=name)
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=name)


def test_iam_policy_read_modify_write_with_etag(client: sm.SecretManagerServiceClient) -> None:
    name = _secret(client)
    stale = client.get_iam_policy(request={"resource": name})
    _grant(client, name, f"serviceAccount:{SA}")
    stale.bindings.add(role="roles/secretmanager.secretAccessor", members=["user:a@example.org"])
    with pytest.raises(exceptions.Aborted):
        client.set_iam_policy(request={"resource": name, "policy": stale})
    policy = client.get_iam_policy(request={"resource": name})
    assert [list(b.members) for b in policy.bindings] == [[f"serviceAccount:{SA}"]]
    bad = client.get_iam_policy(request={"resource": name})
    bad.bindings.add(role="roles/secretmanager.notARole", members=["user:a@example.org"])
    with pytest.raises(exceptions.InvalidArgument):
        client.set_iam_policy(request={"resource": name, "policy": bad})
    ghost = client.get_iam_policy(request={"resource": name})
    ghost.bindings.add(
        role="roles/secretmanager.secretAccessor",
        members=["serviceAccount:ghost@demo-project.iam.gserviceaccount.com"],
    )
    with pytest.raises(exceptions.InvalidArgument, match=r"ghost@.* does not exist"):
        client.set_iam_policy(request={"resource": name, "policy": ghost})


def test_state_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        _create_account()
        c = clients.secret_manager()
        name = _secret(c)
        c.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"kept"))
        _grant(c, name, f"serviceAccount:{SA}")
    assert (state / "state.json").stat().st_mode & 0o077 == 0  # only the owner can read it
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        c = clients.secret_manager()
        assert c.access_secret_version(name=f"{name}/versions/latest").payload.data == b"kept"
        policy = c.get_iam_policy(request={"resource": name})
        assert [list(b.members) for b in policy.bindings] == [[f"serviceAccount:{SA}"]]


# Cloud Run reading secrets --------------------------------------------------------------

PRINT_HASH = (
    "import hashlib, os; print(hashlib.sha256(os.environ['GITHUB_TOKEN'].encode()).hexdigest())"
)


def _secret_job(version: str = "latest", account: str = SA) -> run_v2.Job:
    job = job_spec(PRINT_HASH)
    job.template.template.service_account = account
    ref = run_v2.SecretKeySelector(secret="github-token", version=version)
    job.template.template.containers[0].env.append(
        run_v2.EnvVar(name="GITHUB_TOKEN", value_source=run_v2.EnvVarSource(secret_key_ref=ref))
    )
    return job


def _run(emulator: Emulator, job_id: str, job: run_v2.Job) -> run_v2.Execution:
    create(clients.jobs(), job_id, job)
    op = clients.jobs().run_job(name=f"projects/{PROJECT}/locations/europe-west2/jobs/{job_id}")
    return wait_execution(clients.executions(), op.metadata.name)


def _stdout(execution: run_v2.Execution) -> list[str]:
    ex_id = execution.name.rsplit("/", 1)[1]
    pager = clients.logging().list_log_entries(
        request={
            "resource_names": [f"projects/{PROJECT}"],
            "filter": f'labels."run.googleapis.com/execution_name"="{ex_id}"',
        }
    )
    return [e.text_payload or str(e.json_payload) for e in pager]


def test_a_task_sees_the_newest_version_when_its_account_may_read_it(
    emulator: Emulator, client: sm.SecretManagerServiceClient
) -> None:
    name = _secret(client)
    client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"old"))
    client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"s3cr3t-value"))
    _grant(client, name, f"serviceAccount:{SA}")

    ex = _run(emulator, "reads-secret", _secret_job())

    assert ex.succeeded_count == 1, ex
    lines = _stdout(ex)
    assert hashlib.sha256(b"s3cr3t-value").hexdigest() in lines
    assert not any("s3cr3t-value" in line for line in lines)
    # The execution's spec holds the reference, never the value.
    env = ex.template.containers[0].env
    assert env[-1].value == "" and env[-1].value_source.secret_key_ref.secret == "github-token"


def test_a_pinned_version_is_read(
    emulator: Emulator, client: sm.SecretManagerServiceClient
) -> None:
    name = _secret(client)
    client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"first"))
    client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"second"))
    _grant(client, name, f"serviceAccount:{SA}")
    ex = _run(emulator, "pinned", _secret_job("1"))
    assert hashlib.sha256(b"first").hexdigest() in _stdout(ex)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-access", "Permission denied on secret: projects/demo-project/secrets/github-token"),
        (
            "missing",
            "Secret projects/demo-project/secrets/github-token/versions/latest was not found",
        ),
        ("no-version", "was not found"),
        ("disabled", "DISABLED"),
    ],
)
def test_a_task_fails_at_start_with_the_reason(
    emulator: Emulator, client: sm.SecretManagerServiceClient, setup: str, message: str
) -> None:
    if setup != "missing":
        name = _secret(client)
        if setup != "no-version":
            v = client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"x"))
        if setup != "no-access":
            _grant(client, name, f"serviceAccount:{SA}")
        if setup == "disabled":
            client.disable_secret_version(name=v.name)

    ex = _run(emulator, f"fails-{setup}", _secret_job())

    assert ex.failed_count == 1
    completed = condition(ex, "Completed")
    assert completed.state == run_v2.Condition.State.CONDITION_FAILED
    assert message in completed.message
    (task,) = clients.tasks().list_tasks(parent=ex.name)
    assert message in task.last_attempt_result.status.message
    assert "GITHUB_TOKEN" in task.last_attempt_result.status.message
    # The cause as a field: Condition.CommonReason SECRETS_ACCESS_CHECK_FAILED on the task.
    task_completed = condition(task, "Completed")
    assert task_completed.reason == run_v2.Condition.CommonReason.SECRETS_ACCESS_CHECK_FAILED
    system = [line for line in _stdout(ex) if message in line]
    assert system, "the reason is in the execution's system log"


def test_a_grant_on_the_project_is_enough(
    emulator: Emulator, client: sm.SecretManagerServiceClient
) -> None:
    name = _secret(client)
    client.add_secret_version(parent=name, payload=sm.SecretPayload(data=b"v"))
    projects = clients.projects()
    policy = projects.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    policy.bindings.add(role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{SA}"])
    projects.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    ex = _run(emulator, "project-grant", _secret_job())
    assert ex.succeeded_count == 1


def test_a_bad_secret_reference_is_refused_by_create_job(emulator: Emulator) -> None:
    job = _secret_job()
    job.template.template.containers[0].env[-1].value_source.secret_key_ref.secret = "a/b"
    with pytest.raises(exceptions.InvalidArgument, match="invalid secret"):
        create(clients.jobs(), "bad-ref", job)
