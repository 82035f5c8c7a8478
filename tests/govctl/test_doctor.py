"""`govctl doctor` end to end on the loopback cloud: an empty project fails and names every
missing piece; a complete deployment (made with the official clients) passes; then one thing
at a time is broken, and doctor names the cause and its fix (and `--fix -y` repairs the IAM,
API and scheduler-agent cases)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core.future import polling
from google.cloud import billing_v1, iam_admin_v1, run_v2, scheduler_v1, service_usage_v1
from google.protobuf import field_mask_pb2

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients, executions
from govctl.services.apis import BASE

PROJECT = "demo-project"
REGION = "us-central1"  # fake-gcs-server puts every bucket in US-CENTRAL1
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB = f"{PARENT}/jobs/govreposcrape-ingestion"
SCHEDULE = f"{PARENT}/jobs/govreposcrape-daily-ingest"
RUN_URI = f"https://run.googleapis.com/v2/{JOB}:run"
SA = f"govreposcrape-sa@{PROJECT}.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{SA}"
BUILDER = f"serviceAccount:govreposcrape-build@{PROJECT}.iam.gserviceaccount.com"
BUCKET = "govreposcrape-summaries"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/doctor-test@sha256:" + "ab" * 32
FAST_POLL = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.2, multiplier=1.5)
PY = sys.executable

# Grows past 512 MiB in filled 64 MiB steps, then waits to be killed.
HOG = (
    f"{PY} -c 'import time\nheld = []\nfor _ in range(16):\n"
    '    held.append(b"x" * (64 << 20)); time.sleep(0.03)\ntime.sleep(30)\''
)


@pytest.fixture
def cloud(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.chdir(tmp_path)
    for key in ("GOVCTL_DEBUG", "GOVCTL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_REGION", REGION)
    emulator.cloud.image_map["*/doctor-test@*"] = f"{PY} -c 'print(\"ingested\")'"
    return emulator


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()  # only doctor's own output is parsed
    code = main(["doctor", "--json", *args])
    captured = capsys.readouterr()
    assert captured.out, captured.err
    report = json.loads(captured.out)
    assert "Traceback" not in captured.err
    return code, {c["name"]: c for c in report["checks"]}


def failing(checks: dict[str, Any]) -> dict[str, str]:
    return {n: c["evidence"] for n, c in checks.items() if c["status"] == "fail"}


def deploy(emulator: Emulator) -> None:
    """Every piece a working deployment has, made with the official clients."""
    usage = clients.service_usage()
    usage.batch_enable_services(
        request={"parent": f"projects/{PROJECT}", "service_ids": [a.name for a in BASE]}
    ).result()
    clients.iam().create_service_account(
        name=f"projects/{PROJECT}",
        account_id="govreposcrape-sa",
        service_account=iam_admin_v1.ServiceAccount(display_name="ingestion"),
    )
    storage = clients.storage_client(PROJECT)
    bucket = storage.bucket(BUCKET)
    bucket.add_lifecycle_delete_rule(age=30, matches_prefix=["_runs/"])
    bucket.create(location=REGION)
    blob = bucket.blob("alphagov/repo.md")
    blob.metadata = {"processedAt": datetime.now(UTC).isoformat()}
    blob.upload_from_string("# digest", content_type="text/markdown")
    # Fake-gcs-server has no bucket IAM: the object grant is on the project here.
    grant_project("roles/storage.objectUser", MEMBER)
    make_image(emulator)
    make_build_account()
    container = run_v2.Container(
        image=IMAGE, resources=run_v2.ResourceRequirements(limits={"memory": "512Mi"})
    )
    template = run_v2.TaskTemplate(
        containers=[container], service_account=SA, max_retries=0, timeout="600s"
    )
    job = run_v2.Job(template=run_v2.ExecutionTemplate(task_count=1, template=template))
    clients.jobs().create_job(parent=PARENT, job_id="govreposcrape-ingestion", job=job).result(
        polling=FAST_POLL
    )
    policy = clients.jobs().get_iam_policy(request={"resource": JOB})
    policy.bindings.add(role="roles/run.invoker", members=[MEMBER])
    clients.jobs().set_iam_policy(request={"resource": JOB, "policy": policy})
    clients.scheduler().create_job(
        parent=PARENT,
        job=scheduler_v1.Job(
            name=SCHEDULE,
            schedule="0 2 * * *",
            time_zone="Etc/UTC",
            http_target=scheduler_v1.HttpTarget(
                uri=RUN_URI,
                http_method=scheduler_v1.HttpMethod.POST,
                oauth_token=scheduler_v1.OAuthToken(service_account_email=SA),
            ),
        ),
    )


def make_image(emulator: Emulator) -> None:
    """The job's image in Artifact Registry (its repository made with the official client; the
    image recorded as the emulated Cloud Build records what it builds)."""
    from google.cloud import artifactregistry_v1

    clients.artifact_registry().create_repository(
        parent=PARENT,
        repository_id="govreposcrape",
        repository=artifactregistry_v1.Repository(
            format_=artifactregistry_v1.Repository.Format.DOCKER,
            cleanup_policies={
                "old": artifactregistry_v1.CleanupPolicy(
                    id="old",
                    action=artifactregistry_v1.CleanupPolicy.Action.DELETE,
                    condition=artifactregistry_v1.CleanupPolicyCondition(older_than="2592000s"),
                ),
            },
        ),
    ).result()
    path, _, digest = IMAGE.partition("@")
    emulator.service("artifactregistry").record_image(path, digest, ["latest"])


def make_build_account() -> None:
    """The account `deploy --build cloud` builds as, with the roles `govctl setup` grants it:
    logs on the project, pushes on the repository."""
    clients.iam().create_service_account(
        name=f"projects/{PROJECT}", account_id="govreposcrape-build"
    )
    grant_project("roles/logging.logWriter", BUILDER)
    registry = clients.artifact_registry()
    repository = f"{PARENT}/repositories/govreposcrape"
    policy = registry.get_iam_policy(request={"resource": repository})
    policy.bindings.add(role="roles/artifactregistry.writer", members=[BUILDER])
    registry.set_iam_policy(request={"resource": repository, "policy": policy})


def grant_project(role: str, member: str) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    policy.bindings.add(role=role, members=[member])
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})


def run_and_wait(overrides: executions.Overrides | None = None) -> executions.Execution:
    ex = executions.run(JOB, overrides)
    deadline = time.monotonic() + 30
    while not ex.done:
        assert time.monotonic() < deadline, ex
        time.sleep(0.1)
        ex = executions.get(ex.full)
    return ex


@pytest.fixture
def deployed(cloud: Emulator) -> Emulator:
    deploy(cloud)
    return cloud


def test_an_empty_project_fails_and_names_every_missing_piece(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    # A new project has Google's default APIs only: the others are named, with what uses
    # them, and what cannot be read while its API is off is not judged.
    assert set(fails) == {"apis", "bucket"}
    for api in ("run (the Cloud Run job)", "cloudscheduler", "artifactregistry", "cloudbuild",
                "iam", "cloudresourcemanager", "cloudbilling"):  # fmt: skip
        assert api in fails["apis"]
    assert "gcloud services enable run.googleapis.com" in checks["apis"]["fix"]
    assert checks["job"] == {**checks["job"], "status": "skip",
                             "evidence": "not checked: run is disabled (see apis)"}  # fmt: skip
    assert checks["service account"]["evidence"] == "not checked: iam is disabled (see apis)"

    code, checks = doctor(capsys, "--fix", "-y")  # enables them
    assert checks["apis"]["status"] == "ok"
    fails = failing(checks)
    assert set(fails) == {"service account", "build account", "job", "scheduler", "bucket"}
    assert SA in fails["service account"]
    assert fails["build account"] == (
        f"govreposcrape-build@{PROJECT}.iam.gserviceaccount.com does not exist: "
        "`deploy --build cloud` cannot build"
    )
    assert checks["build account"]["fix"].startswith("govctl setup")
    # Neither the job nor its scheduler: said once, plainly (as after `govctl destroy`).
    assert (
        "nothing is deployed in us-central1: no Cloud Run job govreposcrape-ingestion, no "
        "scheduler job govreposcrape-daily-ingest" in fails["job"]
    )
    assert "govreposcrape-daily-ingest not found" in fails["scheduler"]
    assert f"gs://{BUCKET} does not exist" in fails["bucket"]
    assert checks["credentials"]["evidence"].startswith("user:emulator@example.com")
    assert checks["job"]["fix"] == "govctl setup, then govctl deploy"
    # What cannot be judged yet says so rather than passing.
    assert checks["job access"]["status"] == "skip"
    assert checks["bucket access"]["status"] == "skip"


def test_a_complete_deployment_passes(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_and_wait().status == "succeeded"
    code, checks = doctor(capsys)
    assert failing(checks) == {}
    assert code == 0
    assert checks["job access"]["evidence"] == f"{MEMBER} may run govreposcrape-ingestion"
    assert "OAuth token" in checks["scheduler"]["evidence"]
    assert checks["last run"]["status"] == "ok"
    assert "of the 10m task timeout" in checks["run time"]["evidence"]
    assert checks["digests"]["status"] == "ok"
    # Fake-gcs-server has no bucket IAM, so the grant is project-wide: doctor says so.
    assert checks["bucket access"]["status"] == "warn"
    # The build account may log and push; its source bucket is made by setup (or a first build).
    assert checks["build account"]["status"] == "warn"
    assert checks["build account"]["evidence"].endswith(
        f"not checked: gs://{PROJECT}_cloudbuild does not exist yet"
    )
    # Nobody would hear of a failure yet, and no secret is read.
    assert (
        checks["alerts"]["status"] == "warn" and "no alert policy" in checks["alerts"]["evidence"]
    )
    assert checks["alerts"]["fix"] == "run `govctl alerts set --email ADDRESS`"
    assert checks["secrets"]["status"] == "skip"
    # The job was made by hand, not from the settings: drift, field by field, deployed →
    # settings, with the command that reconciles it. The schedule matches.
    drift = checks["job drift"]
    assert drift["status"] == "warn", drift
    assert "memory 512Mi → 4Gi" in drift["evidence"]
    assert drift["fix"].startswith("govctl deploy applies the settings")
    assert checks["schedule drift"]["status"] == "ok"
    assert checks["alerts drift"]["status"] == "skip"
    # The human form: one line per check, the summary last, exit 0.
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["ok", "credentials"]
    assert out[-1] == "0 failing, 4 warnings."


def test_a_pipeline_that_does_not_clean_up_is_warned_and_setup_fixes_it(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import artifactregistry_v1

    _, checks = doctor(capsys)
    assert checks["run files"]["status"] == "ok"
    expire = f"gs://{BUCKET}: _runs/ run files expire after 30 days"
    assert checks["run files"]["evidence"] == expire
    assert checks["image cleanup"]["status"] == "ok"
    bucket = clients.storage_client(PROJECT).get_bucket(BUCKET)
    bucket.clear_lifecycle_rules()
    bucket.patch()
    repo = clients.artifact_registry().get_repository(name=f"{PARENT}/repositories/govreposcrape")
    clients.artifact_registry().update_repository(
        repository=artifactregistry_v1.Repository(name=repo.name),
        update_mask={"paths": ["cleanup_policies"]},
    )
    _, checks = doctor(capsys)
    assert checks["run files"]["status"] == "warn"
    assert "no lifecycle rule for _runs/" in checks["run files"]["evidence"]
    assert checks["run files"]["fix"].startswith("govctl setup")
    assert checks["image cleanup"]["status"] == "warn"
    assert "has no cleanup policy" in checks["image cleanup"]["evidence"]
    assert checks["image cleanup"]["fix"].startswith("govctl setup")
    assert main(["setup", "-y"]) == 0
    _, checks = doctor(capsys)
    assert checks["run files"]["status"] == checks["image cleanup"]["status"] == "ok"


def test_alerts_and_secrets_after_deploy(
    deployed: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "set", "--email", "ops@example.org", "-y"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("GOVCTL_JOB_SECRETS", "GITHUB_TOKEN=github-token")
    code, checks = doctor(capsys)
    assert checks["alerts"]["status"] == "ok" and "ops@example.org" in checks["alerts"]["evidence"]
    # [job] secrets uses Secret Manager, whose API this project never enabled: the apis
    # check names it, with what needs it.
    assert failing(checks) == {"apis": "disabled: secretmanager ([job] secrets)"}
    assert checks["secrets"]["evidence"] == "not checked: secretmanager is disabled (see apis)"
    code, checks = doctor(capsys, "--fix", "-y")
    assert checks["apis"]["status"] == "ok"
    assert checks["secrets"]["status"] == "fail" and code == 1
    assert "github-token does not exist" in checks["secrets"]["evidence"]
    assert checks["secrets"]["fix"] == "run `govctl secrets set GITHUB_TOKEN`"


def test_missing_invoker_on_the_job_is_named_and_fixed(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = clients.jobs()
    policy = jobs.get_iam_policy(request={"resource": JOB})
    del policy.bindings[:]
    jobs.set_iam_policy(request={"resource": JOB, "policy": policy})
    attempt = clients.scheduler().run_job(name=SCHEDULE)
    assert attempt.status.code == 7  # the scheduler's attempt is refused

    code, checks = doctor(capsys)
    assert code == 1
    assert failing(checks) == {
        "job access": f"{MEMBER} lacks roles/run.invoker on job govreposcrape-ingestion",
        "last attempt": checks["last attempt"]["evidence"],
    }
    assert "PERMISSION_DENIED" in checks["last attempt"]["evidence"]
    assert "lacks roles/run.invoker on the job" in checks["last attempt"]["evidence"]
    assert (
        "gcloud run jobs add-iam-policy-binding govreposcrape-ingestion --region us-central1 "
        f"--member={MEMBER} --role=roles/run.invoker"
    ) in checks["job access"]["fix"]

    code, checks = doctor(capsys, "--fix", "-y")
    assert code == 0, failing(checks)
    policy = jobs.get_iam_policy(request={"resource": JOB})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [("roles/run.invoker", [MEMBER])]
    # The old attempt is history: a warning that the cause is gone, until the next attempt.
    assert checks["last attempt"]["status"] == "warn"
    # govctl has the command for it: the fix names it, not `gcloud scheduler jobs run`.
    assert checks["last attempt"]["fix"].startswith("govctl schedule trigger")
    assert clients.scheduler().run_job(name=SCHEDULE).status.code == 0


def test_overrides_in_the_scheduler_body_need_the_overrides_role(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sched = clients.scheduler()
    job = sched.get_job(name=SCHEDULE)
    job.http_target.body = b'{"overrides": {"taskCount": 2}}'
    sched.update_job(job=job, update_mask=field_mask_pb2.FieldMask(paths=["http_target"]))
    code, checks = doctor(capsys)
    assert code == 1
    assert "roles/run.jobsExecutorWithOverrides" in failing(checks)["job access"]
    code, checks = doctor(capsys, "--fix", "-y")
    assert code == 0, failing(checks)
    assert sched.run_job(name=SCHEDULE).status.code == 0


def test_a_disabled_run_api_is_named_and_enabled_by_fix(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    clients.service_usage().disable_service(
        request={"name": f"projects/{PROJECT}/services/run.googleapis.com"}
    ).result()
    code, checks = doctor(capsys)
    assert code == 1
    assert failing(checks) == {"apis": "disabled: run (the Cloud Run job)"}
    assert checks["apis"]["fix"] == (
        "govctl doctor --fix, or govctl setup (or: gcloud services enable run.googleapis.com "
        "--project demo-project)"
    )
    # What reads the job cannot judge it while Run's API is off: said, not failed.
    assert checks["job"]["evidence"] == "not checked: run is disabled (see apis)"
    code, checks = doctor(capsys, "--fix", "-y")
    assert code == 0, failing(checks)
    state = clients.service_usage().get_service(
        request={"name": f"projects/{PROJECT}/services/run.googleapis.com"}
    )
    assert state.state == service_usage_v1.State.ENABLED


def test_fix_asks_and_refuses_without_a_terminal(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    clients.service_usage().disable_service(
        request={"name": f"projects/{PROJECT}/services/run.googleapis.com"}
    ).result()
    assert main(["doctor", "--fix"]) == 2
    err = capsys.readouterr().err
    assert "enable run.googleapis.com in project demo-project" in err
    assert "pass -y" in err
    state = clients.service_usage().get_service(
        request={"name": f"projects/{PROJECT}/services/run.googleapis.com"}
    )
    assert state.state == service_usage_v1.State.DISABLED


def test_a_scheduler_pointing_at_another_job(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sched = clients.scheduler()
    job = sched.get_job(name=SCHEDULE)
    job.http_target.uri = f"https://run.googleapis.com/v2/{PARENT}/jobs/govreposcrape-old:run"
    sched.update_job(job=job, update_mask=field_mask_pb2.FieldMask(paths=["http_target"]))
    # With run.invoker on the whole project, Run says the job does not exist.
    grant_project("roles/run.invoker", MEMBER)
    assert sched.run_job(name=SCHEDULE).status.code == 5  # NOT_FOUND

    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    assert set(fails) == {"scheduler", "last attempt"}
    assert "govreposcrape-old:run, not this job's v2 :run URI" in fails["scheduler"]
    assert f"--uri={RUN_URI}" in checks["scheduler"]["fix"]
    assert "NOT_FOUND: the target job govreposcrape-old does not exist" in fails["last attempt"]


def test_an_oidc_token_and_a_paused_scheduler(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sched = clients.scheduler()
    sched.pause_job(name=SCHEDULE)
    code, checks = doctor(capsys)
    assert (code, checks["scheduler"]["status"]) == (0, "warn")
    assert "PAUSED" in checks["scheduler"]["evidence"]
    # govctl has the command: the fix names it, not `gcloud scheduler jobs resume`.
    assert checks["scheduler"]["fix"] == "govctl doctor --fix, or govctl schedule resume"
    code, checks = doctor(capsys, "--fix", "-y")
    assert checks["scheduler"]["status"] == "ok"
    assert sched.get_job(name=SCHEDULE).state == scheduler_v1.Job.State.ENABLED

    job = sched.get_job(name=SCHEDULE)
    job.http_target.oidc_token = scheduler_v1.OidcToken(service_account_email=SA)
    sched.update_job(job=job, update_mask=field_mask_pb2.FieldMask(paths=["http_target"]))
    assert sched.run_job(name=SCHEDULE).status.code == 16  # UNAUTHENTICATED
    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    assert set(fails) == {"scheduler", "last attempt"}
    assert "an OIDC token, which Google APIs refuse" in fails["scheduler"]
    assert f"--oauth-service-account-email={SA}" in checks["scheduler"]["fix"]


def test_the_scheduler_service_agent_losing_its_role(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    kept = [b for b in policy.bindings if b.role != "roles/cloudscheduler.serviceAgent"]
    del policy.bindings[:]
    policy.bindings.extend(kept)
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    assert clients.scheduler().run_job(name=SCHEDULE).status.code == 7

    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    assert set(fails) == {"scheduler agent", "last attempt"}
    assert "roles/cloudscheduler.serviceAgent" in fails["scheduler agent"]
    assert "service agent" in fails["last attempt"]
    code, checks = doctor(capsys, "--fix", "-y")
    assert code == 0, failing(checks)
    assert clients.scheduler().run_job(name=SCHEDULE).status.code == 0


def test_billing_disabled(deployed: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    clients.billing().update_project_billing_info(
        name=f"projects/{PROJECT}",
        project_billing_info=billing_v1.ProjectBillingInfo(billing_account_name=""),
    )
    code, checks = doctor(capsys)
    assert code == 1
    assert set(failing(checks)) == {"billing"}
    assert "gcloud billing projects link demo-project" in checks["billing"]["fix"]


def test_a_run_out_of_memory_is_diagnosed(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.cloud.image_map["*/doctor-test@*"] = HOG
    ex = run_and_wait()
    assert ex.status == "failed"
    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    assert set(fails) == {"last run"}
    assert fails["last run"].startswith(f"{ex.name} ran out of memory: Memory limit of 512 MiB")
    assert 'memory = "1Gi"' in checks["last run"]["fix"]
    assert "gcloud run jobs update govreposcrape-ingestion" in checks["last run"]["fix"]


def test_a_task_timeout_is_diagnosed(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.cloud.image_map["*/doctor-test@*"] = f"{PY} -c 'import time; time.sleep(30)'"
    ex = run_and_wait(executions.Overrides(timeout_s=1))
    assert ex.status == "failed"
    code, checks = doctor(capsys)
    assert code == 1
    assert "task 0 reached its task timeout" in failing(checks)["last run"]
    assert "task_timeout" in checks["last run"]["fix"]


def test_a_non_zero_exit_shows_its_last_error_line(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.cloud.image_map["*/doctor-test@*"] = (
        f'{PY} -c \'import json, sys; print(json.dumps({{"severity": "ERROR", '
        f'"message": "feed unreadable: 404"}})); sys.exit(3)\''
    )
    ex = run_and_wait()
    code, checks = doctor(capsys)
    assert code == 1
    assert failing(checks)["last run"] == f"{ex.name}: task 0 exited with 3: feed unreadable: 404"
    assert f"govctl logs --execution {ex.name} --errors" in checks["last run"]["fix"]


def test_stale_digests_warn(deployed: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    blob = clients.storage_client(PROJECT).bucket(BUCKET).blob("alphagov/repo.md")
    blob.metadata = {"processedAt": (datetime.now(UTC) - timedelta(days=3)).isoformat()}
    blob.upload_from_string("# digest", content_type="text/markdown")
    code, checks = doctor(capsys)
    assert code == 0
    assert checks["digests"]["status"] == "warn"
    assert "older than two schedule intervals (2d0h)" in checks["digests"]["evidence"]


def test_an_unreachable_cloud_is_said_at_once(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from govctl.services import doctor as service

    monkeypatch.setattr(service, "PREFLIGHT_TIMEOUT", 1.0)
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    t0 = time.monotonic()
    code, checks = doctor(capsys)
    assert time.monotonic() - t0 < 10
    assert code == 1
    assert failing(checks) == {
        "project": "get project demo-project: the emulator at 127.0.0.1:9 is not running"
    }
    assert {c["status"] for n, c in checks.items() if n != "project"} == {"skip"}


def test_doctor_help_imports_no_google_library() -> None:
    code = (
        "import sys\nfrom govctl.cli.main import main\nassert main(['doctor', '--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "--fix" in proc.stdout


def test_a_disabled_service_account(deployed: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    clients.iam().disable_service_account(
        request={"name": f"projects/{PROJECT}/serviceAccounts/{SA}"}
    )
    assert clients.scheduler().run_job(name=SCHEDULE).status.code == 16  # UNAUTHENTICATED
    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    assert set(fails) == {"service account", "last attempt"}
    assert fails["service account"] == f"{SA} is disabled"
    assert checks["service account"]["fix"] == (
        f"gcloud iam service-accounts enable {SA} --project {PROJECT}"
    )
    assert "the service account is disabled" in fails["last attempt"]


def test_runs_near_the_task_timeout_warn(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = clients.jobs()
    job = jobs.get_job(name=JOB)
    job.template.template.timeout = "4s"
    jobs.update_job(job=job).result(polling=FAST_POLL)
    deployed.cloud.image_map["*/doctor-test@*"] = f"{PY} -c 'import time; time.sleep(3.5)'"
    assert run_and_wait().status == "succeeded"
    code, checks = doctor(capsys)
    assert code == 0
    run_time = checks["run time"]
    assert run_time["status"] == "warn", run_time
    assert "of the 4s task timeout" in run_time["evidence"]
    assert "task_timeout" in run_time["fix"]


@pytest.mark.parametrize(
    ("image", "status", "needle"),
    [
        (IMAGE.replace("ab" * 32, "cd" * 32), "fail", "does not exist in Artifact Registry"),
        (IMAGE.partition("@")[0] + ":latest", "warn", "follows a tag, not a digest"),
        ("gcr.io/demo-project/ingestion:latest", "fail", "Container Registry, which is shut"),
    ],
)
def test_the_jobs_image(
    deployed: Emulator, capsys: pytest.CaptureFixture[str], image: str, status: str, needle: str
) -> None:
    jobs = clients.jobs()
    job = jobs.get_job(name=JOB)
    job.template.template.containers[0].image = image
    jobs.update_job(job=job).result(polling=FAST_POLL)
    code, checks = doctor(capsys)
    assert checks["image"]["status"] == status, checks["image"]
    assert needle in checks["image"]["evidence"]
    assert code == (1 if status == "fail" else 0)
    assert checks["image"]["fix"]


def test_a_caller_who_may_not_deploy(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    for binding in policy.bindings:
        if binding.role == "roles/owner":
            binding.role = "roles/viewer"
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    code, checks = doctor(capsys)
    assert code == 1
    rights = failing(checks)["deploy rights"]
    assert rights.startswith("user:emulator@example.com lacks run.jobs.create")
    assert "iam.serviceAccounts.actAs" in rights
    fix = checks["deploy rights"]["fix"]
    assert "--member=user:emulator@example.com --role=roles/run.developer" in fix
    assert "--role=roles/cloudscheduler.admin" in fix
    assert f"gcloud iam service-accounts add-iam-policy-binding {SA}" in fix


class StubFacts:
    """Facts as doctor's checks read them, without the cloud (for timing rules only)."""

    def __init__(self, **values: Any) -> None:
        self.values = values

    def get(self, key: str) -> Any:
        return self.values[key]


def run_record(minutes: float) -> executions.Execution:
    start = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    return executions.Execution(
        name="x", full="x", job="j", status="succeeded", reason=None, message="",
        created=start, started=start, completed=start + timedelta(minutes=minutes),
        task_count=1, succeeded=1, failed=0, cancelled=0, running=0, retried=0, log_uri="",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cron", "minutes", "status", "needle"),
    [
        ("0 2 * * *", 30, "ok", "5% of the 10h00m task timeout; the schedule runs every 24h00m"),
        ("0 2 * * *", 540, "warn", "median 9h00m of 3 run(s): 90% of the 10h00m task timeout"),
        ("0 * * * *", 90, "warn", "runs would overlap"),
    ],
)
def test_run_time_against_the_timeout_and_the_schedule(
    cron: str, minutes: float, status: str, needle: str
) -> None:
    from govctl import config
    from govctl.gcp import jobs
    from govctl.services.doctor import model, runs

    env = {"GOVCTL_PROJECT": PROJECT, "GOVCTL_SCHEDULE_CRON": cron, "CLOUDSDK_CONFIG": "/-"}
    ctx = model.Context(config.load(env=env), PROJECT)
    job = jobs.JobSpec(
        image=IMAGE, cpu=1, memory_mib=512, task_timeout=timedelta(hours=10), max_retries=0,
        tasks=1, parallelism=0, service_account=SA, env={}, args=(), labels={},
    )  # fmt: skip
    facts = StubFacts(job=job, executions=[run_record(minutes)] * 3, scheduler=None)
    check = runs.run_time(ctx, facts)  # type: ignore[arg-type]
    assert check.status == status, check
    assert needle in check.evidence


def test_a_service_account_without_object_rights(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    kept = [b for b in policy.bindings if b.role != "roles/storage.objectUser"]
    del policy.bindings[:]
    policy.bindings.extend(kept)
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    code, checks = doctor(capsys)
    access = checks["bucket access"]
    # fake-gcs-server has no bucket IAM: a grant on the bucket cannot be seen there, which is
    # the emulator's documented limit, not a warning for every emulator user.
    assert (code, access["status"]) == (0, "skip")
    assert "(fake-gcs-server) has no bucket IAM" in access["evidence"]


def test_no_credentials_is_one_failing_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No emulator and no Application Default Credentials: nothing is called.
    monkeypatch.chdir(tmp_path)
    for key in ("GOVCTL_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    code, checks = doctor(capsys)
    assert code == 1
    assert set(failing(checks)) == {"credentials"}
    assert "gcloud auth application-default login" in checks["credentials"]["fix"]
