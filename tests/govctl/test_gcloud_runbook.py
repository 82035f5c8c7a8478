"""The old runbook's gcloud lines (docs/runbook.md, left column), run by the real gcloud
against the emulator's REST gateway, each effect checked through govctl.

gcloud is an independent, strict client: it parses every response by the API's published
schema (apitools messages of the v1 Knative Run API, Scheduler, Logging, Service Usage,
Resource Manager v1, IAM), so these tests check the gateway's JSON, not only that it answers.
gcloud 528 is installed on the development machines; where it is missing (CI may lack it)
the tests are skipped, saying so. gcloud reaches the emulator only through the settings
``govctl emulator start`` prints (``Emulator.gcloud_env()``): a proxy, endpoint overrides and
no credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import run_v2

from govctl.cli.main import main
from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.gcp import iam as gcp_iam
from govctl.gcp import services as gcp_services
from govctl.services import image as images
from tests.support.builds import build_account_for
from tests.support.cloud import enable_apis
from tests.support.git import GitServer, make_repo

GCLOUD = shutil.which("gcloud")
pytestmark = pytest.mark.skipif(
    GCLOUD is None,
    reason="gcloud is not installed (CI may not have it): the runbook's gcloud lines "
    "(docs/runbook.md) are not checked against the emulator",
)

PROJECT = "demo-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB = "govreposcrape-ingestion"
JOB_PATH = f"{PARENT}/jobs/{JOB}"
SCHEDULE = "govreposcrape-daily-ingest"
BUCKET = "govreposcrape-summaries"
SA = f"govreposcrape-sa@{PROJECT}.iam.gserviceaccount.com"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion:latest"
V1_RUN_URI = (
    f"https://{REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}"
    f"/jobs/{JOB}:run"
)
REPOS = ["frontend", "publisher", "whitehall", "collections", "signon"]
RUNBOOK_APIS = [
    "run.googleapis.com", "cloudscheduler.googleapis.com", "containerregistry.googleapis.com",
    "cloudbuild.googleapis.com",
]  # fmt: skip


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The emulator (the ingestion image runs the installed job), govctl's settings from the
    environment, the bucket, and gcloud configured for the project as the runbook's first
    line does."""
    with Emulator(state_dir=tmp_path / "state", image_map=default_image_map()) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
        for key, value in {
            "GOVCTL_PROJECT": PROJECT,
            "GOVCTL_REGION": REGION,
            "GOVCTL_BUCKET_NAME": BUCKET,
        }.items():
            monkeypatch.setenv(key, value)
        clients.storage_client(PROJECT).create_bucket(BUCKET)
        # As after the runbook's one-time `gcloud services enable` of run, cloudscheduler,
        # containerregistry and cloudbuild (test_one_time_setup_lines runs that line itself).
        # It then uses IAM, which it never enables: a real project has it on already (the
        # console, or a dependency Google enables with another service; no source lists
        # Run's). The emulator enables no dependencies (docs/emulator/iam.md): on here.
        enable_apis(PROJECT, [*RUNBOOK_APIS, "iam.googleapis.com"])
        gcloud(emu, "config", "set", "project", PROJECT)
        yield emu


def gcloud(emu: Emulator, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run gcloud with only the emulator's settings (none of the developer's CLOUDSDK_*)."""
    assert GCLOUD is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    env |= emu.gcloud_env()
    done = subprocess.run(
        [GCLOUD, *argv], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if check:
        assert done.returncode == 0, f"gcloud {' '.join(argv)}:\n{done.stderr}"
    return done


def govctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def govctl_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out = govctl(capsys, *argv, "--json")
    assert code == 0, out
    return json.loads(out)


def _json_lines(out: str) -> list[Any]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _feed(tmp_path: Path, server: GitServer) -> Path:
    for name in REPOS:
        make_repo(server.root / "alphagov" / name, {"README.md": f"# {name}\n"})
    entries = [
        {"owner": "alphagov", "name": n, "url": server.url(f"alphagov/{n}"),
         "pushedAt": "2026-11-01T00:00:00Z"}
        for n in REPOS
    ]  # fmt: skip
    path = tmp_path / "repos.json"
    path.write_text(json.dumps(entries))
    return path


def _digests() -> set[str]:
    return {b.name for b in clients.storage_client(PROJECT).list_blobs(BUCKET, prefix="alphagov/")}


def _executions() -> list[run_v2.Execution]:
    return sorted(
        clients.executions().list_executions(parent=JOB_PATH), key=lambda e: e.create_time
    )


def _create_service_account(emu: Emulator) -> None:
    gcloud(emu, "iam", "service-accounts", "create", "govreposcrape-sa",
           "--display-name", "govreposcrape")  # fmt: skip


def _create_job(emu: Emulator, feed: Path, host: str, verb: str = "create") -> None:
    """deploy-job.sh's `gcloud run jobs deploy` flags (with `create`, or `deploy` itself); the
    job's own args let it clone from the test's git server, as github.com is by default."""
    gcloud(
        emu, "run", "jobs", verb, JOB, "--image", IMAGE, "--region", REGION,
        "--cpu", "2", "--memory", "4Gi", "--task-timeout", "6h", "--max-retries", "0",
        "--service-account", SA,
        "--set-env-vars", f"REPOS_FEED_URL={feed},GCS_BUCKET_NAME={BUCKET}",
        f"--args=--allow-host={host}",
    )  # fmt: skip


def _wait_done(name: str, timeout: float = 120) -> run_v2.Execution:
    deadline = time.monotonic() + timeout
    while True:
        ex = clients.executions().get_execution(name=name)
        if ex.completion_time:
            return ex
        assert time.monotonic() < deadline, f"{name} did not finish"
        time.sleep(0.2)


def test_one_time_setup_lines(cloud: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    gcloud(cloud, "services", "enable", *RUNBOOK_APIS)
    assert all(gcp_services.enabled(PROJECT, RUNBOOK_APIS).values())

    _create_service_account(cloud)
    account = gcp_iam.service_account(PROJECT, SA)
    assert account is not None and not account.disabled
    shown = clients.iam().get_service_account(name=f"projects/{PROJECT}/serviceAccounts/{SA}")
    assert shown.display_name == "govreposcrape"

    for role in ("roles/storage.objectAdmin", "roles/run.invoker"):
        gcloud(cloud, "projects", "add-iam-policy-binding", PROJECT,
               "--member", f"serviceAccount:{SA}", "--role", role)  # fmt: skip
    assert gcp_iam.project_policy(PROJECT).roles_of(f"serviceAccount:{SA}") == {
        "roles/storage.objectAdmin",
        "roles/run.invoker",
    }
    shown = gcloud(cloud, "projects", "get-iam-policy", PROJECT, "--format=json").stdout
    bindings = {b["role"]: b["members"] for b in json.loads(shown)["bindings"]}
    assert bindings["roles/run.invoker"] == [f"serviceAccount:{SA}"]
    # govctl doctor names the project-wide grants the old runbook made.
    _, out = govctl(capsys, "doctor")
    assert "roles/storage.objectAdmin" in out


def test_deploy_execute_monitor_lines(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_service_account(cloud)
    _create_job(cloud, _feed(tmp_path, git_server), git_server.host)
    job = clients.jobs().get_job(name=JOB_PATH)
    container = job.template.template.containers[0]
    assert dict(container.resources.limits) == {"cpu": "2", "memory": "4Gi"}
    assert job.template.template.timeout.total_seconds() == 6 * 3600
    assert job.template.template.max_retries == 0
    assert job.template.template.service_account == SA
    assert {e.name: e.value for e in container.env}["GCS_BUCKET_NAME"] == BUCKET
    described = gcloud(cloud, "run", "jobs", "describe", JOB, "--region", REGION).stdout
    assert "Memory:" in described and "4Gi" in described and "Task Timeout:" in described

    host = git_server.host
    # Manual execution: --args replace the job's args (so the git server is allowed again).
    gcloud(cloud, "run", "jobs", "execute", JOB, "--region", REGION, "--wait",
           f"--args=--allow-host={host},--limit=2")  # fmt: skip
    assert len(_digests()) == 2
    listed = govctl_json(capsys, "executions", "list")
    assert [e["status"] for e in listed] == ["succeeded"]
    shown = govctl_json(capsys, "executions", "show", "--latest")
    assert shown["repositories"]["processed"] == 2

    gcloud(cloud, "run", "jobs", "execute", JOB, "--region", REGION, "--wait")
    assert len(_digests()) == len(REPOS)

    # The old one-execution-per-batch form; without --wait it returns once started.
    gcloud(cloud, "run", "jobs", "execute", JOB, "--region", REGION,
           f"--args=--allow-host={host},--batch-size=4,--offset=1,--force")  # fmt: skip
    batch = _wait_done(_executions()[-1].name)
    assert list(batch.template.containers[0].args)[-3:] == [
        "--batch-size=4",
        "--offset=1",
        "--force",
    ]
    assert batch.succeeded_count == 1

    # The runbook's line verbatim: its args replace the job's, so the test's git server is
    # no longer allowed; gcloud's exit status is the execution's result, as govctl sees it.
    verbatim = gcloud(cloud, "run", "jobs", "execute", JOB, "--region", REGION, "--wait",
                      "--args=--limit=10", check=False)  # fmt: skip
    last = _executions()[-1]
    assert list(last.template.containers[0].args) == ["--limit=10"]
    status = govctl_json(capsys, "executions", "show", last.name.rsplit("/", 1)[1])["status"]
    assert (verbatim.returncode == 0) == (status == "succeeded"), verbatim.stderr

    names = [e.name.rsplit("/", 1)[1] for e in _executions()]
    listed_text = gcloud(cloud, "run", "jobs", "executions", "list", "--job", JOB,
                         "--region", REGION, "--format=value(metadata.name)").stdout  # fmt: skip
    assert sorted(listed_text.split()) == sorted(names)
    shown = gcloud(cloud, "run", "jobs", "executions", "describe", names[0],
                   "--region", REGION, "--format=json").stdout  # fmt: skip
    first = json.loads(shown)
    assert first["status"]["succeededCount"] == 1
    assert first["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--limit=2"
    tasks = gcloud(cloud, "run", "jobs", "executions", "tasks", "list", "--execution",
                   names[0], "--region", REGION, "--format=json").stdout  # fmt: skip
    assert [t["metadata"]["labels"]["run.googleapis.com/runningState"]
            for t in json.loads(tasks)] == ["Succeeded"]  # fmt: skip

    # Monitoring: the runbook's logging filters read what govctl logs reads.
    every = _json_lines(govctl(capsys, "logs", "-n", "500", "--json")[1])
    errors = _json_lines(govctl(capsys, "logs", "--errors", "-n", "500", "--json")[1])
    assert every and len(errors) < len(every)
    job_filter = f'resource.type="cloud_run_job" AND resource.labels.job_name="{JOB}"'
    for flt, limit, expected in (
        (job_filter, 50, every),
        (f"{job_filter} AND severity>=ERROR", 50, errors),
        ('resource.type="cloud_run_job" AND severity>=ERROR', 20, errors),
    ):
        read = gcloud(cloud, "logging", "read", flt, "--limit", str(limit), "--format=json")
        entries = json.loads(read.stdout)
        assert len(entries) == min(limit, len(expected)), flt
        assert all(e["resource"]["labels"]["job_name"] == JOB for e in entries)


def test_scheduler_lines(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_service_account(cloud)
    _create_job(cloud, _feed(tmp_path, git_server), git_server.host)
    gcloud(cloud, "projects", "add-iam-policy-binding", PROJECT,
           "--member", f"serviceAccount:{SA}", "--role", "roles/run.invoker")  # fmt: skip
    gcloud(cloud, "scheduler", "jobs", "create", "http", SCHEDULE, "--location", REGION,
           "--schedule", "0 2 * * *", "--uri", V1_RUN_URI, "--http-method", "POST",
           "--oauth-service-account-email", SA)  # fmt: skip
    shown = govctl_json(capsys, "schedule", "show")
    assert shown["cron"] == "0 2 * * *" and shown["state"] == "ENABLED"

    described = gcloud(cloud, "scheduler", "jobs", "describe", SCHEDULE, "--location", REGION)
    assert "schedule: 0 2 * * *" in described.stdout
    listed = gcloud(cloud, "scheduler", "jobs", "list", "--location", REGION)
    assert SCHEDULE in listed.stdout

    gcloud(cloud, "scheduler", "jobs", "update", "http", SCHEDULE, "--location", REGION,
           "--schedule", "0 2,14 * * *")  # fmt: skip
    assert govctl_json(capsys, "schedule", "show")["cron"] == "0 2,14 * * *"

    gcloud(cloud, "scheduler", "jobs", "pause", SCHEDULE, "--location", REGION)
    assert govctl_json(capsys, "schedule", "show")["state"] == "PAUSED"
    gcloud(cloud, "scheduler", "jobs", "resume", SCHEDULE, "--location", REGION)
    assert govctl_json(capsys, "schedule", "show")["state"] == "ENABLED"

    # `run` fires the v1 :run target now, as the service account: an execution starts.
    gcloud(cloud, "scheduler", "jobs", "run", SCHEDULE, "--location", REGION)
    (execution,) = _executions()
    listed_runs = govctl_json(capsys, "executions", "list")
    assert listed_runs[0]["name"] == execution.name.rsplit("/", 1)[1]
    _wait_done(execution.name)


def test_configuration_lines_show_as_drift_in_govctl_deploy(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_service_account(cloud)
    enable_apis(PROJECT)  # govctl builds and deploys the image: what `govctl setup` enables
    built = images.build_image(
        PROJECT, REGION, allow_dirty=True, account=build_account_for(PROJECT)
    )
    assert main(["deploy", "--image", built.uri, "-y"]) == 0
    plan = govctl_json(capsys, "deploy", "--image", built.uri, "--dry-run")
    assert all(r["action"] == "unchanged" for r in plan["resources"])

    # The Configuration section's line: a change made behind govctl's back ...
    gcloud(cloud, "run", "jobs", "update", JOB, "--region", REGION, "--memory=8Gi",
           "--task-timeout=12h")  # fmt: skip
    # ... is drift in govctl's plan, field by field, and nothing else moved in the round trip
    # through the v1 API (gcloud reads the whole job and writes it back).
    plan = govctl_json(capsys, "deploy", "--image", built.uri, "--dry-run")
    job_plan = next(r for r in plan["resources"] if r["kind"] == "run job")
    assert job_plan["action"] == "update"
    assert {c["field"]: (c["old"], c["new"]) for c in job_plan["changes"]} == {
        "memory": ("8Gi", "4Gi"),
        "task_timeout": ("12h", "6h"),
    }

    # Parallel processing's line.
    gcloud(cloud, "run", "jobs", "update", JOB, "--region", REGION, "--tasks", "10",
           "--parallelism", "5")  # fmt: skip
    job = clients.jobs().get_job(name=JOB_PATH)
    assert (job.template.task_count, job.template.parallelism) == (10, 5)


def test_troubleshooting_lines(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_service_account(cloud)
    # deploy-job.sh's own command; it checks that the Run API is enabled first.
    gcloud(cloud, "services", "enable", "run.googleapis.com")
    _create_job(cloud, _feed(tmp_path, git_server), git_server.host, verb="deploy")
    assert clients.jobs().get_job(name=JOB_PATH).template.template.max_retries == 0
    assert gcloud(cloud, "config", "get-value", "project").stdout.strip() == PROJECT
    enabled = gcloud(cloud, "services", "list", "--enabled", "--format=value(config.name)")
    known = [*RUNBOOK_APIS, "iam.googleapis.com", "logging.googleapis.com",
             "storage.googleapis.com", "monitoring.googleapis.com", "serviceusage.googleapis.com",
             "artifactregistry.googleapis.com", "secretmanager.googleapis.com"]  # fmt: skip
    assert set(enabled.stdout.split()) == {
        name for name, on in gcp_services.enabled(PROJECT, known).items() if on
    }
    billing = gcloud(cloud, "billing", "projects", "describe", PROJECT, "--format=json")
    assert json.loads(billing.stdout)["billingEnabled"] is True
    account = gcloud(cloud, "iam", "service-accounts", "describe", SA, "--format=json")
    assert json.loads(account.stdout)["email"] == SA
    # The job's own policy: Run v1's projects.locations.jobs IAM, whose path is also a Cloud
    # Scheduler job's; the gateway tells them apart by host, as Google does.
    gcloud(cloud, "run", "jobs", "add-iam-policy-binding", JOB, "--region", REGION,
           "--member", f"serviceAccount:{SA}", "--role", "roles/run.invoker")  # fmt: skip
    assert gcp_iam.job_policy(JOB_PATH).holds(f"serviceAccount:{SA}", "roles/run.invoker")
    policy = gcloud(cloud, "run", "jobs", "get-iam-policy", JOB, "--region", REGION,
                    "--format=json")  # fmt: skip
    assert json.loads(policy.stdout)["bindings"] == [
        {"members": [f"serviceAccount:{SA}"], "role": "roles/run.invoker"}
    ]


# The policy file of cloud.google.com/artifact-registry/docs/repositories/cleanup-policy, as it
# is written there: gcloud sends its enum values as they stand ("Delete", "tagged"), and
# Google's front end takes them (docs/emulator.md, "REST").
DOCUMENTED_POLICIES = [
    {"name": "delete-prerelease", "action": {"type": "Delete"},
     "condition": {"tagState": "tagged", "tagPrefixes": ["alpha", "v0"], "olderThan": "30d"}},
    {"name": "keep-minimum-versions", "action": {"type": "Keep"},
     "mostRecentVersions": {"packageNamePrefixes": ["webapp", "mobile", "sandbox"],
                            "keepCount": 5}},
]  # fmt: skip


def test_cleanup_policy_lines_are_what_govctl_reads(cloud: Emulator, tmp_path: Path) -> None:
    from govctl.gcp import retention

    gcloud(cloud, "services", "enable", "artifactregistry.googleapis.com")
    gcloud(cloud, "artifacts", "repositories", "create", "team", "--repository-format=docker",
           "--location", REGION)  # fmt: skip
    policy_file = tmp_path / "policies.json"
    policy_file.write_text(json.dumps(DOCUMENTED_POLICIES))
    gcloud(cloud, "artifacts", "repositories", "set-cleanup-policies", "team",
           f"--policy={policy_file}", "--no-dry-run", "--location", REGION)  # fmt: skip
    found = retention.cleanup_policies(PROJECT, REGION, "team")
    assert found is not None and not found.dry_run
    assert found.policies["delete-prerelease"] == retention.CleanupPolicy(
        "delete-prerelease", "DELETE", tag_state="TAGGED", tag_prefixes=("alpha", "v0"),
        older_than_s=30 * 86400,
    )  # fmt: skip
    assert found.policies["keep-minimum-versions"].keep_count == 5

    # gcloud's delete sends the whole repository back without an update mask (AIP-134: the
    # populated fields), so the map it sends replaces the one stored.
    gcloud(cloud, "artifacts", "repositories", "delete-cleanup-policies", "team",
           "--policynames=delete-prerelease", "--location", REGION)  # fmt: skip
    found = retention.cleanup_policies(PROJECT, REGION, "team")
    assert found is not None and list(found.policies) == ["keep-minimum-versions"]
