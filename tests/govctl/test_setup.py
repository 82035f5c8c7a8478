"""`govctl setup` end to end on the loopback cloud: from an empty project, doctor fails and
names every missing piece → setup → deploy → doctor passes; a second setup writes nothing;
a dry run writes nothing; a disabled API is enabled; problems and bad input stop it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from google.cloud import billing_v1, service_usage_v1

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.gcp.services import NEEDED
from tests.govctl.test_doctor import doctor, failing
from tests.support.recorder import Recorder

PROJECT = "setup-project"
REGION = "us-central1"  # fake-gcs-server puts every bucket in US-CENTRAL1
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB = f"{PARENT}/jobs/govreposcrape-ingestion"
SA = f"govreposcrape-sa@{PROJECT}.iam.gserviceaccount.com"
BUILDER = f"govreposcrape-build@{PROJECT}.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{SA}"
BUCKET = "setup-test-digests"
REPOSITORY = f"{PARENT}/repositories/govreposcrape"


@pytest.fixture
def empty(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator with nothing in the project; settings from the environment only."""
    monkeypatch.chdir(tmp_path)
    for key in ("GOVCTL_DEBUG", "GOVCTL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_REGION", REGION)
    monkeypatch.setenv("GOVCTL_BUCKET_NAME", BUCKET)
    # The emulator makes a project when a request first names it; an empty project exists.
    clients.projects().get_project(name=f"projects/{PROJECT}")
    return emulator


def snapshot(emulator: Emulator) -> Any:
    """Everything the loopback cloud holds: each service's saved state, and the buckets."""
    state = {}
    for svc in emulator.cloud.services:
        with svc.lock:
            state[svc.key] = copy.deepcopy(svc.dump())
    storage = clients.storage_client(PROJECT)
    buckets = [(b.name, b.metageneration, b.etag) for b in storage.list_buckets()]
    return state, buckets


def setup(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["setup", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def plan_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = setup(capsys, "--dry-run", "--json")
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def enabled_apis() -> set[str]:
    answer = clients.service_usage().list_services(
        request={"parent": f"projects/{PROJECT}", "filter": "state:ENABLED"}
    )
    return {s.config.name for s in answer}


def test_from_an_empty_project_doctor_setup_deploy_doctor(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, checks = doctor(capsys)
    assert code == 1
    fails = failing(checks)
    assert set(fails) == {"apis", "service account", "build account", "job", "scheduler", "bucket"}
    for api in ("run", "cloudscheduler", "artifactregistry", "cloudbuild", "iam"):
        assert api in fails["apis"]
    assert f"{SA} does not exist" in fails["service account"]
    assert f"{BUILDER} does not exist" in fails["build account"]
    assert f"gs://{BUCKET} does not exist" in fails["bucket"]
    assert checks["service account"]["fix"].startswith("govctl setup")
    assert checks["bucket"]["fix"].startswith("govctl setup")

    code, out, err = setup(capsys, "-y")
    assert code == 0
    assert "  + api             run.googleapis.com" in out
    assert "  = api             storage.googleapis.com   (unchanged)" in out
    assert f"  + service account {SA}" in out
    assert f"  + bucket          gs://{BUCKET}" in out
    assert "      public_access_prevention     enforced" in out
    assert f"  + iam             roles/storage.objectAdmin on gs://{BUCKET}" in out
    assert "  + repository      govreposcrape (us-central1-docker.pkg.dev/setup-project)" in out
    # run.invoker on the job: the job is deploy's; the plan says so.
    assert (
        f"roles/run.invoker for {SA} on job govreposcrape-ingestion: the job does not exist "
        "yet; `govctl deploy` creates it and grants the role"
    ) in out
    # The account builds run as, what it needs, and the bucket its sources are staged in.
    assert f"  + service account {BUILDER}" in out
    assert f"  + iam             roles/logging.logWriter on project {PROJECT}" in out
    assert "  + iam             roles/artifactregistry.writer on repository govreposcrape" in out
    assert f"  + bucket          gs://{PROJECT}_cloudbuild" in out
    assert f"  + iam             roles/storage.objectViewer on gs://{PROJECT}_cloudbuild" in out
    assert "note: billing is enabled (billingAccounts/" in out
    assert "14 to add, 0 to change, 2 unchanged." in out
    assert f"created service account {SA}" in err
    assert f"created bucket gs://{BUCKET} in {REGION}" in err
    assert f"created service account {BUILDER}" in err
    assert (
        f"granted roles/artifactregistry.writer to serviceAccount:{BUILDER} on repository "
        "govreposcrape"
    ) in err
    # fake-gcs-server has no bucket IAM: said, not faked.
    assert "warning: roles/storage.objectAdmin on gs://setup-test-digests not applied" in err
    assert err.rstrip().endswith("next: govctl deploy")
    assert set(NEEDED) <= enabled_apis()
    assert clients.iam().get_service_account(name=f"projects/{PROJECT}/serviceAccounts/{SA}")
    repo = clients.artifact_registry().get_repository(name=REPOSITORY)
    assert repo.format_.name == "DOCKER"
    assert clients.storage_client(PROJECT).lookup_bucket(BUCKET) is not None

    assert main(["deploy", "-y", "--allow-dirty"]) == 0
    assert "created run job govreposcrape-ingestion" in capsys.readouterr().err

    code, checks = doctor(capsys)
    assert failing(checks) == {}, checks
    assert code == 0
    assert checks["apis"]["status"] == "ok"
    assert checks["service account"]["status"] == "ok"
    assert checks["job access"]["status"] == "ok"
    assert checks["bucket"]["evidence"] == f"gs://{BUCKET} in US-CENTRAL1"
    # What only the emulator lacks (bucket IAM) is a warning, not a pass.
    assert checks["bucket access"]["status"] == "warn"

    # After deploy, setup finds the job's grant in place and nothing to do.
    code, out, err = setup(capsys)
    assert code == 0
    assert "  = iam             roles/run.invoker on job govreposcrape-ingestion   (unchanged)" in (
        out
    )
    assert "nothing to do" in err


def test_setup_twice_the_second_writes_nothing(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup(capsys, "-y")[0] == 0
    before = snapshot(empty)
    code, out, err = setup(capsys, "-y")
    assert code == 0
    assert "0 to add, 0 to change, 14 unchanged." in out
    assert "+" not in out.replace("(+00:00)", "")
    assert "nothing to do" in err and "created" not in err and "enabled " not in err
    assert err.rstrip().endswith("next: govctl deploy")
    # The emulator tells what it could not check rather than pretending.
    assert "not checked and not applied: the storage server has no bucket IAM" in out
    assert "not checked: the storage server does not report them" in out
    assert snapshot(empty) == before
    assert setup(capsys, "--dry-run", "--exit-code")[0] == 0  # nothing to apply
    assert plan_json(capsys)["summary"] == {
        "to_add": 0,
        "to_change": 0,
        "to_delete": 0,
        "unchanged": 14,
    }


def test_a_dry_run_writes_nothing(empty: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(empty)
    code, out, err = setup(capsys, "--dry-run")
    assert code == 0
    assert "14 to add, 0 to change, 2 unchanged." in out
    assert "dry run: nothing written" in err
    assert setup(capsys, "--dry-run", "--exit-code")[0] == 3  # something to apply
    assert setup(capsys, "--exit-code")[0] == 2  # only with --dry-run
    assert snapshot(empty) == before
    plan = plan_json(capsys)
    assert {(r["kind"], r["action"]) for r in plan["resources"]} >= {
        ("api", "create"), ("service account", "create"), ("bucket", "create"),
        ("iam", "create"), ("repository", "create"),
    }  # fmt: skip
    bucket = next(r for r in plan["resources"] if r["name"] == f"gs://{BUCKET}")
    assert {c["field"]: c["new"] for c in bucket["changes"]} == {
        "location": "US-CENTRAL1",
        "uniform_bucket_level_access": "on",
        "public_access_prevention": "enforced",
    }
    assert snapshot(empty) == before


def test_a_disabled_api_is_enabled(empty: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup(capsys, "-y")[0] == 0
    clients.service_usage().disable_service(
        request=service_usage_v1.DisableServiceRequest(
            name=f"projects/{PROJECT}/services/run.googleapis.com"
        )
    ).result()
    assert "run.googleapis.com" not in enabled_apis()
    code, out, err = setup(capsys, "-y")
    assert code == 0
    assert "  + api             run.googleapis.com" in out
    assert "1 to add, 0 to change, 13 unchanged." in out
    assert "enabled run.googleapis.com" in err
    assert set(NEEDED) <= enabled_apis()


def test_the_job_invoker_is_granted_on_the_job_when_missing(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup(capsys, "-y")[0] == 0
    assert main(["deploy", "-y", "--allow-dirty"]) == 0
    jobs = clients.jobs()
    policy = jobs.get_iam_policy(request={"resource": JOB})
    del policy.bindings[:]
    jobs.set_iam_policy(request={"resource": JOB, "policy": policy})
    # The old runbook's project-wide grant is named, with the command that removes it.
    rm = clients.projects()
    project_policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    project_policy.bindings.add(role="roles/storage.objectAdmin", members=[MEMBER])
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": project_policy})

    code, out, err = setup(capsys, "-y")
    assert code == 0
    assert "  + iam             roles/run.invoker on job govreposcrape-ingestion" in out
    assert f"      member  {MEMBER}" in out
    assert (
        f"{MEMBER} also holds roles/storage.objectAdmin on the whole project" in out
        and f"remove-iam-policy-binding {PROJECT} --member={MEMBER} "
        "--role=roles/storage.objectAdmin"
        in out
    )
    assert f"granted roles/run.invoker to {MEMBER} on job govreposcrape-ingestion" in err
    bindings = jobs.get_iam_policy(request={"resource": JOB}).bindings
    assert [(b.role, list(b.members)) for b in bindings] == [("roles/run.invoker", [MEMBER])]


def test_billing_disabled_is_a_problem_and_nothing_is_written(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    clients.billing().update_project_billing_info(
        name=f"projects/{PROJECT}",
        project_billing_info=billing_v1.ProjectBillingInfo(billing_account_name=""),
    )
    before = snapshot(empty)
    code, out, err = setup(capsys, "-y")
    assert code == 1
    assert "note: billing is disabled" in out
    assert err.count("\n") == 1, err  # one line: the reason and the fix
    assert f"cannot set up: billing is disabled for project {PROJECT}" in err
    assert f"gcloud billing projects link {PROJECT} --billing-account=ACCOUNT_ID" in err
    assert snapshot(empty) == before


def test_without_yes_a_terminal_is_asked_and_a_pipe_refused(
    empty: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(empty)
    code, _, err = setup(capsys)
    assert code == 2
    assert "refusing to apply without confirmation: stdin is not a terminal" in err
    assert "pass -y to apply, or --dry-run to only see the plan" in err
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.confirm", lambda question: False)
    code, _, err = setup(capsys)
    assert code == 1 and "not applied" in err
    assert snapshot(empty) == before
    monkeypatch.setattr("govctl.render.confirm", lambda question: True)
    assert setup(capsys)[0] == 0
    assert clients.storage_client(PROJECT).lookup_bucket(BUCKET) is not None


def test_a_service_account_of_another_project_is_a_problem(
    empty: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "ingest-robot@elsewhere-project.iam.gserviceaccount.com"
    monkeypatch.setenv("GOVCTL_JOB_SERVICE_ACCOUNT", other)
    # The iam API on, so the account is looked up (and found missing).
    clients.service_usage().enable_service(
        request={"name": f"projects/{PROJECT}/services/iam.googleapis.com"}
    ).result()
    code, _, err = setup(capsys, "--dry-run")
    assert code == 1
    assert f"service account {other} does not exist and is not one setup can create" in err
    assert f"NAME@{PROJECT}.iam.gserviceaccount.com" in err


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--region", "mars-north1"], {}, "mars-north1"),
        ([], {"GOVCTL_BUCKET_NAME": "gs://digests"}, "'digests'"),
        ([], {"GOVCTL_JOB_SERVICE_ACCOUNT": "robot"}, "service account"),
        ([], {"GOVCTL_JOB_IMAGE": "gcr.io/p/ingestion"}, "Artifact Registry"),
        (["--dry-run", "--frobnicate"], {}, "--frobnicate"),
    ],
)
def test_bad_input_is_exit_2_with_no_call(
    tmp_path: Path, args: list[str], env: dict[str, str], needle: str
) -> None:
    """In a subprocess whose GOVCTL_EMULATOR_HOST is a closed port: an API call before the
    check would be exit 1 (unreachable), not 2."""
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "no-gcloud"),
        "GOVCTL_EMULATOR_HOST": "127.0.0.1:9",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "GOVCTL_PROJECT": PROJECT,
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "govctl", "setup", *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_no_project_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    for key in ("GOVCTL_PROJECT", "GOVCTL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    assert main(["setup", "--dry-run"]) == 2


def test_an_open_bucket_is_secured_and_a_far_one_is_said(
    empty: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fake-gcs-server neither reports a bucket's access settings (so the emulator's bucket is
    "not checked") nor keeps them when patched. So the adapter's reading is replaced by what
    Cloud Storage reports for an old bucket (uniform access off, public access prevention
    inherited, in another region), and the effect is checked on the wire: the request govctl
    sends, through a recording proxy in front of fake-gcs-server, against Google's reference
    for buckets.patch (https://cloud.google.com/storage/docs/json_api/v1/buckets/patch)."""
    from govctl.gcp import buckets

    assert setup(capsys, "-y")[0] == 0
    real_get = buckets.get
    meta = real_get(BUCKET, PROJECT).metageneration  # type: ignore[union-attr]

    def old_bucket(name: str, project: str | None = None) -> buckets.Bucket | None:
        found = real_get(name, project)
        if found is None:
            return None
        return buckets.Bucket(name, "EUROPE-WEST2", False, "inherited", meta)

    monkeypatch.setattr(buckets, "get", old_bucket)
    with Recorder(os.environ["STORAGE_EMULATOR_HOST"]) as wire:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", wire.url)
        code, out, err = setup(capsys, "-y")
    assert code == 0
    assert f"  ~ bucket          gs://{BUCKET}" in out
    assert "      uniform_bucket_level_access  off  →  on" in out
    assert "      public_access_prevention     inherited  →  enforced" in out
    assert (
        f"gs://{BUCKET} is in EUROPE-WEST2, the job in US-CENTRAL1: every digest crosses regions"
    ) in out
    assert "0 to add, 1 to change, 13 unchanged." in out
    assert f"updated bucket gs://{BUCKET}: uniform bucket-level access on" in err
    # One PATCH of the bucket, conditional on the metageneration the plan read, that turns
    # uniform bucket-level access on and enforces public access prevention; no other write.
    writes = [r for r in wire.requests if r.method != "GET"]
    assert [(r.method, urllib.parse.urlsplit(r.path).path) for r in writes] == [
        ("PATCH", f"/storage/v1/b/{BUCKET}")
    ]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(writes[0].path).query)
    assert query["ifMetagenerationMatch"] == [str(meta)]
    sent = json.loads(writes[0].body)["iamConfiguration"]
    assert sent["uniformBucketLevelAccess"]["enabled"] is True
    assert sent["publicAccessPrevention"] == "enforced"


def test_a_caller_who_may_not_act_as_the_account_is_told_before_deploy(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup(capsys, "-y")[0] == 0
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    for binding in policy.bindings:
        if binding.role == "roles/owner":
            binding.role = "roles/viewer"  # may read everything, act as no one
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    code, out, err = setup(capsys, "--dry-run")
    assert code == 0 and "nothing to do" in err
    assert (
        f"note: user:emulator@example.com lacks iam.serviceAccounts.actAs on {SA}: "
        "`govctl deploy` will be refused; ask an owner: gcloud iam service-accounts "
        f"add-iam-policy-binding {SA} --member=user:emulator@example.com "
        "--role=roles/iam.serviceAccountUser"
    ) in out


def test_the_job_account_gets_read_access_to_each_configured_secret(
    empty: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import secretmanager_v1 as sm

    monkeypatch.setenv("GOVCTL_JOB_SECRETS", "GITHUB_TOKEN=github-token DB_PASSWORD=db-password")
    store = clients.secret_manager()
    store.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id="github-token",
        secret=sm.Secret(replication=sm.Replication(automatic=sm.Replication.Automatic())),
    )
    secret = f"projects/{PROJECT}/secrets/github-token"
    store.add_secret_version(parent=secret, payload=sm.SecretPayload(data=b"t0ken"))

    # Secret Manager's API is off in a new project: its secrets are read (and planned) by
    # the next run, once this one has enabled it; nothing unplanned is written.
    code, out, err = setup(capsys, "-y")
    assert code == 0, err
    assert "  + api             secretmanager.googleapis.com" in out
    assert "note: [job] secrets (DB_PASSWORD, GITHUB_TOKEN): checked once the secretmanager" in out
    assert "secretAccessor" not in out + err
    assert err.rstrip().endswith(
        "next: govctl setup again, to plan [job] secrets now that their APIs are on; "
        "then govctl deploy"
    )

    code, out, err = setup(capsys, "-y")
    assert code == 0, err
    assert "  + iam             roles/secretmanager.secretAccessor on secret github-token" in out
    # A value is `govctl secrets set`'s to store, never setup's: said with the command.
    assert (
        f"note: secret db-password does not exist in project {PROJECT}: run `govctl secrets "
        "set DB_PASSWORD`"
    ) in out
    assert f"granted roles/secretmanager.secretAccessor to {MEMBER} on secret github-token" in err
    policy = store.get_iam_policy(request={"resource": secret})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/secretmanager.secretAccessor", [MEMBER])
    ]
    assert "t0ken" not in out + err

    code, out, err = setup(capsys)
    assert code == 0 and "nothing to do" in err
    assert (
        "  = iam             roles/secretmanager.secretAccessor on secret github-token   "
        "(unchanged)"
    ) in out


def test_with_index_and_alert_email_set_those_up_too(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = setup(capsys, "-y")
    assert code == 0
    assert (
        "alerts: no alert policy for govreposcrape-ingestion: nobody hears of a failure; add "
        "them with `govctl setup --alert-email ADDRESS`"
    ) in err

    code, out, err = setup(capsys, "-y", "--with-index", "--alert-email", "ops@example.org")
    assert code == 0, err
    assert "  + api             discoveryengine.googleapis.com" in out
    assert "  + data store      govreposcrape-search (global)" in out
    assert f"      indexes  gs://{BUCKET}" in out
    assert "created data store govreposcrape-search (global)" in err
    store = f"projects/{PROJECT}/locations/global/collections/default_collection/dataStores/"
    assert clients.data_stores().get_data_store(name=store + "govreposcrape-search")
    assert "ops@example.org" in out  # the alerts' own plan, shown before it is applied
    channels = clients.notification_channels().list_notification_channels(
        name=f"projects/{PROJECT}"
    )
    assert [c.labels["email_address"] for c in channels] == ["ops@example.org"]
    assert "alerts: no alert policy" not in err

    before = snapshot(empty)
    code, out, err = setup(capsys, "-y", "--with-index", "--alert-email", "ops@example.org")
    assert code == 0, err
    assert "  = data store      govreposcrape-search (global)   (unchanged)" in out
    assert "nothing to do" in err and "no changes" in err
    assert snapshot(empty) == before


def test_alert_email_is_checked_before_any_call_and_not_with_json(
    empty: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(empty)
    code, _, err = setup(capsys, "-y", "--alert-email", "nobody")
    assert code == 2 and "invalid --alert-email 'nobody': expected an e-mail address" in err
    code, _, err = setup(capsys, "-y", "--json", "--alert-email", "ops@example.org")
    assert code == 2 and "--json and --alert-email exclude each other" in err
    assert snapshot(empty) == before
