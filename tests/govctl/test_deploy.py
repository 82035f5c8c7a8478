"""`govctl deploy` end to end: the CLI against the loopback cloud, state read back with the
official clients."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from google.cloud import iam_admin_v1, run_v2, scheduler_v1

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import image as images
from tests.emulator.run_support import FAST_POLL
from tests.support.builds import build_account_for

PROJECT = "deploy-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB = f"{PARENT}/jobs/govreposcrape-ingestion"
SCHEDULE = f"{PARENT}/jobs/govreposcrape-daily-ingest"
SA = f"govreposcrape-sa@{PROJECT}.iam.gserviceaccount.com"
BUCKET = "deploy-test-digests"
DIGEST = "sha256:" + "3f" * 32  # a digest as the plan shows it (the rendering test)


def _bundled_image() -> str:
    """The image the emulator's Cloud Build makes of this checkout's job, named before it is
    built: its digest is the sha256 of the source bundle (docs/emulator/cloudbuild.md). The
    ``cloud`` fixture builds it, so that ``--image IMAGE`` resolves."""
    _, info = images.source_bundle(allow_dirty=True)
    return f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion@sha256:{info.sha256}"


IMAGE = _bundled_image()


def create_prerequisites(service_account: bool = True, bucket: bool = True) -> None:
    """What `govctl setup` (or the runbook's gcloud lines) creates once."""
    if service_account:
        clients.iam().create_service_account(
            request=iam_admin_v1.CreateServiceAccountRequest(
                name=f"projects/{PROJECT}", account_id="govreposcrape-sa"
            )
        )
    if bucket:
        clients.storage_client(PROJECT).create_bucket(BUCKET)
    build_account_for(PROJECT)  # what `deploy --build cloud` builds as


def deploy(*args: str) -> int:
    return main(["deploy", "--image", IMAGE, *args])


def get_job() -> run_v2.Job:
    return clients.jobs().get_job(name=JOB)


def job_exists() -> bool:
    return any(j.name == JOB for j in clients.jobs().list_jobs(parent=PARENT))


def schedule_exists() -> bool:
    return any(j.name == SCHEDULE for j in clients.scheduler().list_jobs(parent=PARENT))


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = deploy("--dry-run", "--exit-code", "--json", *args)
    return code, json.loads(capsys.readouterr().out)


def test_plan_apply_and_unchanged_redeploy(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites()

    # On an empty project: everything is to add, and a dry run writes nothing.
    assert deploy("--dry-run", "--exit-code") == 3
    out = capsys.readouterr()
    assert "Plan for project deploy-project, europe-west2" in out.out
    assert "  + run job    govreposcrape-ingestion" in out.out
    assert "  + scheduler  govreposcrape-daily-ingest" in out.out
    assert f"  + iam        roles/run.invoker for {SA}" in out.out
    assert "3 to add, 0 to change, 1 unchanged." in out.out
    assert "dry run: nothing written" in out.err
    assert not job_exists() and not schedule_exists()

    code, plan = plan_json(capsys)
    assert code == 3
    assert [(r["kind"], r["action"]) for r in plan["resources"]] == [
        ("repository", "unchanged"),  # the fixture's build created it
        ("run job", "create"), ("iam", "create"), ("scheduler", "create"),
    ]  # fmt: skip
    fields = {c["field"]: c["new"] for c in plan["resources"][1]["changes"]}
    assert fields["memory"] == "4Gi" and fields["task_timeout"] == "6h"
    assert fields["env GCS_BUCKET_NAME"] == BUCKET
    assert fields["label managed-by"] == "govctl"

    # Apply.
    assert deploy("-y") == 0
    err = capsys.readouterr().err
    assert "created run job govreposcrape-ingestion" in err
    assert err.rstrip().endswith("next: govctl run --limit 10")

    job = get_job()
    container = job.template.template.containers[0]
    assert container.image == IMAGE
    assert dict(container.resources.limits) == {"cpu": "2", "memory": "4Gi"}
    assert {e.name: e.value for e in container.env} == {
        "REPOS_FEED_URL": (
            "https://raw.githubusercontent.com/uk-x-gov-software-community/"
            "xgov-opensource-repo-scraper/main/repos.json"
        ),
        "GCS_BUCKET_NAME": BUCKET,
    }
    assert job.template.template.service_account == SA
    assert job.template.template.timeout.total_seconds() == 6 * 3600  # type: ignore[attr-defined]
    assert job.template.template.max_retries == 0  # not Cloud Run's default of 3
    assert (job.template.task_count, job.template.parallelism) == (1, 0)
    assert job.labels["managed-by"] == "govctl"

    # The scheduler calls the job's :run with an OAuth token of the service account.
    sched = clients.scheduler().get_job(name=SCHEDULE)
    assert sched.schedule == "0 2 * * *" and sched.time_zone == "Etc/UTC"
    assert sched.http_target.uri == f"https://run.googleapis.com/v2/{JOB}:run"
    assert sched.http_target.http_method == scheduler_v1.HttpMethod.POST
    assert sched.http_target.oauth_token.service_account_email == SA
    assert sched.http_target.oauth_token.scope == "https://www.googleapis.com/auth/cloud-platform"
    assert "oidc_token" not in sched.http_target
    assert sched.attempt_deadline.total_seconds() == 180  # type: ignore[attr-defined]

    # The service account may run the job.
    policy = clients.jobs().get_iam_policy(request={"resource": JOB})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/run.invoker", [f"serviceAccount:{SA}"])
    ]

    # Nothing to change: says so, writes nothing, --exit-code 0.
    etag, policy_etag = get_job().etag, policy.etag
    user_update = clients.scheduler().get_job(name=SCHEDULE).user_update_time
    assert deploy("-y") == 0
    captured = capsys.readouterr()
    assert "0 to add, 0 to change, 4 unchanged." in captured.out
    assert "no changes" in captured.err and "created" not in captured.err
    assert get_job().etag == etag
    assert clients.jobs().get_iam_policy(request={"resource": JOB}).etag == policy_etag
    assert clients.scheduler().get_job(name=SCHEDULE).user_update_time == user_update
    code, plan = plan_json(capsys)
    assert code == 0 and plan["summary"] == {
        "to_add": 0,
        "to_change": 0,
        "to_delete": 0,
        "unchanged": 4,
    }


def test_a_changed_setting_is_one_field_of_the_plan(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_prerequisites()
    assert deploy("-y") == 0
    monkeypatch.setenv("GOVCTL_JOB_MEMORY", "8Gi")

    code, plan = plan_json(capsys)
    assert code == 3
    repository_plan, job_plan, iam_plan, schedule_plan = plan["resources"]
    assert repository_plan["action"] == "unchanged" and job_plan["action"] == "update"
    assert job_plan["changes"] == [{"field": "memory", "old": "4Gi", "new": "8Gi"}]
    assert iam_plan["action"] == schedule_plan["action"] == "unchanged"

    assert deploy("--dry-run") == 0
    out = capsys.readouterr().out
    assert "  ~ run job    govreposcrape-ingestion" in out
    assert "      memory  4Gi  →  8Gi" in out
    assert "0 to add, 1 to change, 3 unchanged." in out
    assert get_job().template.template.containers[0].resources.limits["memory"] == "4Gi"

    # Applied: only that field moved; what govctl does not manage is kept.
    job = get_job()
    job.labels["team"] = "data"
    job.template.template.containers[0].working_dir = "/srv"
    clients.jobs().update_job(job=job).result(polling=FAST_POLL)
    assert deploy("-y") == 0
    job = get_job()
    assert job.template.template.containers[0].resources.limits["memory"] == "8Gi"
    assert job.labels["team"] == "data"
    assert job.template.template.containers[0].working_dir == "/srv"
    assert plan_json(capsys)[0] == 0


def test_missing_service_account_is_reported_with_the_fix_before_any_write(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites(service_account=False)
    assert deploy("-y") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: cannot deploy: service account {SA} does not exist — run `govctl setup`, or "
        f"`gcloud iam service-accounts create govreposcrape-sa --project {PROJECT}`"
    )
    assert not job_exists() and not schedule_exists()


def test_missing_bucket_is_reported_with_the_fix(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites(bucket=False)
    assert deploy("--dry-run") == 1
    err = capsys.readouterr().err
    assert f"bucket gs://{BUCKET} does not exist" in err
    assert f"gcloud storage buckets create gs://{BUCKET}" in err
    assert not job_exists()


def test_a_non_terminal_without_yes_refuses(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_prerequisites()
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: False)
    assert deploy() == 2
    assert "refusing to apply without confirmation" in capsys.readouterr().err
    assert not job_exists()


def test_a_terminal_asks_and_no_applies_nothing(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_prerequisites()
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.confirm", lambda question: False)
    assert deploy() == 1
    assert "not applied" in capsys.readouterr().err
    assert not job_exists()


def test_a_change_between_plan_and_apply_is_an_error_not_an_overwrite(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_prerequisites()
    assert deploy("-y") == 0
    monkeypatch.setenv("GOVCTL_JOB_MEMORY", "8Gi")

    def someone_else_changes_the_job(question: str) -> bool:
        # While the operator reads the plan, a colleague deploys other args.
        job = get_job()
        job.template.template.containers[0].args = ["--concurrency", "16"]
        clients.jobs().update_job(job=job).result(polling=FAST_POLL)
        return True

    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.confirm", someone_else_changes_the_job)
    assert deploy() == 1
    err = capsys.readouterr().err
    assert "update Cloud Run job" in err and "changed since the plan was made" in err
    assert "rerun `govctl deploy`" in err
    job = get_job()
    assert list(job.template.template.containers[0].args) == ["--concurrency", "16"]
    assert job.template.template.containers[0].resources.limits["memory"] == "4Gi"


def test_a_policy_change_between_plan_and_apply_is_refused(cloud: Emulator) -> None:
    from govctl import config
    from govctl.errors import CloudError
    from govctl.services import deploy as service

    create_prerequisites()
    cfg = config.load()
    clients.jobs().create_job(
        parent=PARENT,
        job_id="govreposcrape-ingestion",
        job=run_v2.Job(
            template=run_v2.ExecutionTemplate(
                template=run_v2.TaskTemplate(containers=[run_v2.Container(image=IMAGE)])
            )
        ),
    ).result(polling=FAST_POLL)
    plan = service.plan(cfg, IMAGE)
    assert plan.iam.action == "create"
    # Someone grants another role meanwhile: the plan's policy etag is stale.
    policy = clients.jobs().get_iam_policy(request={"resource": JOB})
    policy.bindings.add(role="roles/run.viewer", members=["user:ops@example.org"])
    clients.jobs().set_iam_policy(request={"resource": JOB, "policy": policy})
    with pytest.raises(CloudError, match="policy changed since the plan was made"):
        service.apply(plan)
    roles = {b.role for b in clients.jobs().get_iam_policy(request={"resource": JOB}).bindings}
    assert roles == {"roles/run.viewer"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--image", "gcr.io/p/ingestion:1"], "Container Registry (gcr.io) is shut down"),
        (["--image", "not an image"], "invalid --image 'not an image'"),
        (["--exit-code"], "--exit-code needs --dry-run"),
        (["--build", "cloud", "--image", IMAGE], "exclude each other"),
    ],
)
def test_bad_input_exits_2_before_any_call(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens: no call made
    assert main(["deploy", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_image_by_tag_is_pinned_to_its_digest(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites()
    tagged = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion:latest"
    assert main(["deploy", "--image", tagged, "-y"]) == 0
    assert get_job().template.template.containers[0].image == IMAGE  # …@sha256:…
    missing = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion:no-such-tag"
    capsys.readouterr()
    assert main(["deploy", "--image", missing, "-y"]) == 1
    assert "does not exist in Artifact Registry" in capsys.readouterr().err


def test_the_default_builds_the_bundled_job_with_cloud_build_once(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites()
    # The fixture built this source already: the plan reuses that image, pinned.
    assert main(["deploy", "--allow-dirty", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["image"] == IMAGE and plan["build"] is None
    # A source never built: the plan says so, apply builds it and pins its digest.
    other = f"{REGION}-docker.pkg.dev/{PROJECT}/other-repo/ingestion"
    env = {"GOVCTL_JOB_IMAGE": other}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert main(["deploy", "--allow-dirty", "-y"]) == 0
        err = capsys.readouterr().err
        assert "is not built yet: apply builds it with Cloud Build first" in err
        assert "created Artifact Registry repository other-repo" in err
        image = get_job().template.template.containers[0].image
        assert image.startswith(other + "@sha256:")
        assert main(["deploy", "--allow-dirty", "-y"]) == 0  # built once: nothing to change
        assert "no changes" in capsys.readouterr().err


def test_deploy_and_schedule_help_import_no_google_cloud_module() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from govctl.cli.main import main\n"
        "assert main(['deploy', '--help']) == 0\n"
        "assert main(['schedule', 'set', '--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--dry-run" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_scheduler_change_between_plan_and_apply_is_refused(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_prerequisites()
    assert deploy("-y") == 0
    monkeypatch.setenv("GOVCTL_SCHEDULE_CRON", "0 3 * * *")

    def someone_else_reschedules(question: str) -> bool:
        job = clients.scheduler().get_job(name=SCHEDULE)
        job.schedule = "0 4 * * *"
        clients.scheduler().update_job(job=job, update_mask={"paths": ["schedule"]})
        return True

    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.confirm", someone_else_reschedules)
    assert deploy() == 1
    assert "update scheduler job" in capsys.readouterr().err
    assert clients.scheduler().get_job(name=SCHEDULE).schedule == "0 4 * * *"


def test_the_plan_shows_images_by_short_digest_and_commit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from govctl import render
    from govctl.services.plan import UPDATE, Change, Plan, ResourcePlan

    old = f"{IMAGE.partition('@')[0]}@{DIGEST}"
    new = old.replace("3f", "9b")
    change = Change("image", old, new, note="commit 1c2d3e4")
    render.plan(Plan(PROJECT, REGION, (ResourcePlan("run job", "j", UPDATE, (change,)),)))
    out = capsys.readouterr().out
    assert (
        "      image  …/ingestion@sha256:3f3f3f3f3f3f  →  …/ingestion@sha256:9b9b9b9b9b9b "
        "(commit 1c2d3e4)\n"
    ) in out
    assert "\033[" not in out  # no colour when stdout is not a terminal


def test_a_missing_repository_is_planned_and_created(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites()
    # The image lives elsewhere; the settings name a repository that does not exist yet.
    monkeypatch.setenv("GOVCTL_JOB_IMAGE", f"{REGION}-docker.pkg.dev/{PROJECT}/fresh/ingestion")
    assert plan_json(capsys)[0] == 3
    plan = plan_json(capsys)[1]
    repository = plan["resources"][0]
    assert (repository["kind"], repository["action"]) == ("repository", "create")
    assert repository["name"] == f"fresh ({REGION}-docker.pkg.dev/{PROJECT})"
    assert deploy("-y") == 0
    assert "created Artifact Registry repository fresh" in capsys.readouterr().err
    name = f"projects/{PROJECT}/locations/{REGION}/repositories/fresh"
    assert clients.artifact_registry().get_repository(name=name).format_.name == "DOCKER"


def test_a_paused_scheduler_is_said_in_the_plan(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites()
    assert deploy("-y") == 0
    clients.scheduler().pause_job(name=SCHEDULE)
    capsys.readouterr()
    assert deploy("--dry-run") == 0
    out = capsys.readouterr().out
    assert "note: scheduler govreposcrape-daily-ingest is PAUSED and stays so" in out
    assert "govctl schedule resume" in out


def test_a_job_or_scheduler_created_meanwhile_is_said_so(cloud: Emulator) -> None:
    """Between plan and apply someone made the same job: the create is refused, by its
    status (ALREADY_EXISTS), with the fix."""
    from govctl import config
    from govctl.errors import CloudError
    from govctl.gcp import jobs, scheduler
    from govctl.services import deploy as service

    cfg = config.load()
    job = service.desired_job(cfg, IMAGE, None, None)
    jobs.create_job(PARENT, "govreposcrape-ingestion", job)
    with pytest.raises(CloudError, match="it was created meanwhile") as err:
        jobs.create_job(PARENT, "govreposcrape-ingestion", job)
    assert err.value.reason == "ALREADY_EXISTS" and err.value.fix == jobs.CONCURRENT_FIX
    schedule = service.desired_schedule(cfg)
    scheduler.create(PARENT, SCHEDULE, schedule)
    with pytest.raises(CloudError, match="it was created meanwhile") as err:
        scheduler.create(PARENT, SCHEDULE, schedule)
    assert err.value.reason == "ALREADY_EXISTS"
