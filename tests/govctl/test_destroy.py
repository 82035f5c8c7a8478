"""`govctl destroy` end to end on the loopback cloud: what the operator's loop made goes, in
dependency order, what is not asked for stays, a second run has nothing to do; the emulator's
state is read back with the official clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import monitoring_v3, run_v2, service_usage_v1

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import index_sync
from ingestion.demo import build
from tests.emulator.run_support import FAST_POLL
from tests.support.cloud import job_cloud

PROJECT = "destroy-project"
REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB = "govreposcrape-ingestion"
JOB_PATH = f"{PARENT}/jobs/{JOB}"
SCHEDULE = "govreposcrape-daily-ingest"
BUCKET = "destroy-test-digests"
SA = f"govreposcrape-sa@{PROJECT}.iam.gserviceaccount.com"
REPOSITORY = f"{PARENT}/repositories/govreposcrape"
STORES = f"projects/{PROJECT}/locations/global/collections/default_collection"
EMAIL = "ops@example.org"
BUILD_SA = f"govreposcrape-build@{PROJECT}.iam.gserviceaccount.com"
LOG_WRITER = "roles/logging.logWriter"
PUSHER = "roles/artifactregistry.writer"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The loopback cloud with the job's sample feed (local repositories) in the settings."""
    feed = build(tmp_path / "sample")
    settings = {
        "GOVCTL_BUCKET_NAME": BUCKET,
        "GOVCTL_JOB_FEED": feed.resolve().as_uri(),
        "GOVCTL_JOB_ARGS": "--allow-local",
    }
    # Unmapped images run their own command: a job that sleeps until it is cancelled.
    with job_cloud(tmp_path, monkeypatch, project=PROJECT, region=REGION, settings=settings,
                   run_unmapped_images=True) as emu:  # fmt: skip
        monkeypatch.setattr(index_sync, "POLL_S", 0.1)
        yield emu


def _govctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = _govctl(capsys, *argv)
    assert code == 0, f"govctl {' '.join(argv)}: exit {code}\n{out}{err}"
    return out + err


def _deployed(capsys: pytest.CaptureFixture[str], *, alerts: bool = True) -> None:
    """The operator's loop up to a finished run: what destroy has to take apart."""
    _ok(capsys, "setup", "--with-index", "-y")
    _ok(capsys, "deploy", "--build", "cloud", "-y")
    if alerts:
        _ok(capsys, "alerts", "set", "--email", EMAIL, "-y")
    _ok(capsys, "run", "--limit", "2")
    _ok(capsys, "index", "sync")


def _lines(out: str) -> list[str]:
    """The plan's deletion lines, spaces squeezed: ``- KIND NAME``."""
    return [" ".join(line.split()) for line in out.splitlines() if line.startswith("  - ")]


def _digests() -> list[str]:
    blobs = clients.storage_client(PROJECT).list_blobs(BUCKET)
    return sorted(b.name for b in blobs if b.name.endswith(".md"))


def _names(pager: Any) -> list[str]:
    return [r.name for r in pager]


def _left() -> dict[str, list[str]]:
    """What the emulator holds of the kinds destroy deletes, in this project."""
    return {
        "jobs": _names(clients.jobs().list_jobs(parent=PARENT)),
        "schedules": _names(clients.scheduler().list_jobs(parent=PARENT)),
        "policies": _names(
            clients.alert_policies().list_alert_policies(name=f"projects/{PROJECT}")
        ),
        "channels": _names(
            clients.notification_channels().list_notification_channels(name=f"projects/{PROJECT}")
        ),
        "data_stores": _names(clients.data_stores().list_data_stores(parent=STORES)),
        "repositories": _names(clients.artifact_registry().list_repositories(parent=PARENT)),
    }


def _state(emu: Emulator) -> str:
    """Everything the emulator keeps, and the bucket's objects with their generations."""
    dumps = {svc.key: svc.dump() for svc in emu.cloud.services}
    blobs = clients.storage_client(PROJECT).list_blobs(BUCKET)
    dumps["storage"] = sorted((b.name, b.generation) for b in blobs)
    return json.dumps(dumps, sort_keys=True, default=str)


def test_destroy_takes_apart_the_loop_keeps_the_digests_and_a_second_run_writes_nothing(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _deployed(capsys)
    digests = _digests()
    assert len(digests) == 2

    code, out, err = _govctl(capsys, "destroy", "--dry-run", "--exit-code")
    assert code == 3, err
    assert _lines(out) == [
        f"- scheduler {SCHEDULE}",
        f"- run job {JOB}",
        "- policy govreposcrape: execution failed",
        "- policy govreposcrape: no successful execution in 24h30m",
        "- policy govreposcrape: scheduler attempt failed",
        f"- channel {EMAIL}",
        "- data store govreposcrape-search (global)",
        "- index record govreposcrape-search (global)",
        f"- lifecycle rule gs://{BUCKET}: delete _runs/ after 30 days",
        f"- repository govreposcrape ({REGION}-docker.pkg.dev/{PROJECT})",
        f"- iam {LOG_WRITER} for {BUILD_SA} on project {PROJECT}",
    ]  # the dependency order: nothing is deleted before what uses it
    assert "0 to add, 0 to change, 11 to delete, 0 unchanged." in out
    assert f"gs://{BUCKET} stays, with its digests" in out
    assert f"service account(s) {SA}, {BUILD_SA} stay: `--delete-service-account`" in out
    assert "dry run: nothing written" in err
    assert _left()["jobs"] == [JOB_PATH]  # a dry run deletes nothing

    data = json.loads(_govctl(capsys, "destroy", "--dry-run", "--json")[1])
    assert data["summary"] == {"to_add": 0, "to_change": 0, "to_delete": 11, "unchanged": 0}
    assert {r["action"] for r in data["resources"]} == {"delete"}

    code, out, err = _govctl(capsys, "destroy", "-y")
    assert code == 0, err
    assert f"deleted scheduler {SCHEDULE}" in err and f"deleted run job {JOB}" in err
    assert _left() == {k: [] for k in _left()}
    policy = clients.projects().get_iam_policy(resource=f"projects/{PROJECT}")
    assert not [b for b in policy.bindings if f"serviceAccount:{BUILD_SA}" in b.members]
    # The bucket, its digests and the service account stay: each needs its own flag.
    assert _digests() == digests
    assert list(clients.storage_client(PROJECT).get_bucket(BUCKET).lifecycle_rules) == []
    assert clients.iam().get_service_account(name=f"projects/{PROJECT}/serviceAccounts/{SA}")

    code, out, _ = _govctl(capsys, "doctor")
    assert code == 1
    assert f"nothing is deployed in {REGION}: no Cloud Run job {JOB}, no scheduler job" in out

    before = _state(cloud)
    code, out, err = _govctl(capsys, "destroy", "-y")
    assert code == 0, err
    assert "nothing to do" in err and "  - " not in out
    assert _state(cloud) == before  # the second destroy wrote nothing
    assert _govctl(capsys, "destroy", "--dry-run", "--exit-code")[0] == 0


def test_a_data_store_made_again_after_destroy_is_filled_by_the_next_sync(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `index sync` records in the bucket about the data store goes with it: otherwise
    # the next sync, into a data store made again, would find "nothing to import".
    _deployed(capsys, alerts=False)
    _ok(capsys, "destroy", "-y")
    assert _digests() and _index_objects() == []
    _ok(capsys, "setup", "--with-index", "-y")
    said = _ok(capsys, "index", "sync")
    assert "2 imported, 0 failed of 2" in said
    assert "alphagov" in _ok(capsys, "index", "search", "text messages")


def _index_objects() -> list[str]:
    blobs = clients.storage_client(PROJECT).list_blobs(BUCKET, prefix="_index/")
    return [b.name for b in blobs]


def test_the_bucket_goes_only_with_its_name_typed(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, "setup", "-y")
    _ok(capsys, "deploy", "--build", "cloud", "-y")
    clients.storage_client(PROJECT).bucket(BUCKET).blob("alphagov/a.md").upload_from_string("#")
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: False)

    # No terminal to type it on, -y or not: exit 2 before anything is read or deleted.
    for extra in ((), ("-y",)):
        code, out, err = _govctl(capsys, "destroy", "--delete-bucket", *extra)
        assert code == 2 and out == ""
        assert "--delete-bucket needs the bucket's name typed" in err
        assert "nothing was deleted" in err and "--confirm-bucket" in err
    code, _, err = _govctl(capsys, "destroy", "--delete-bucket", "--confirm-bucket", "other", "-y")
    assert code == 2 and "--confirm-bucket 'other' is not the bucket" in err
    code, _, err = _govctl(capsys, "destroy", "--confirm-bucket", BUCKET, "-y")
    assert code == 2 and "--confirm-bucket needs --delete-bucket" in err
    assert _left()["jobs"] == [JOB_PATH] and _digests() == ["alphagov/a.md"]

    # On a terminal: a wrong name keeps everything, -y notwithstanding.
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.ask", lambda question: "destroy-test")
    code, _, err = _govctl(capsys, "destroy", "--delete-bucket", "-y")
    assert code == 1 and "'destroy-test' is not the bucket's name: nothing was deleted" in err
    assert _left()["jobs"] == [JOB_PATH] and _digests() == ["alphagov/a.md"]

    asked: list[str] = []

    def type_the_name(question: str) -> str:
        asked.append(question)
        return BUCKET

    monkeypatch.setattr("govctl.render.ask", type_the_name)
    code, out, err = _govctl(capsys, "destroy", "--delete-bucket", "--delete-service-account", "-y")
    assert code == 0, err
    assert asked == [f"Type the bucket's name to delete gs://{BUCKET} and its 1 object(s)"]
    assert f"deleted gs://{BUCKET} and its 1 object(s)" in err
    assert clients.storage_client(PROJECT).lookup_bucket(BUCKET) is None
    for account in (SA, BUILD_SA):
        with pytest.raises(exceptions.NotFound):
            clients.iam().get_service_account(name=f"projects/{PROJECT}/serviceAccounts/{account}")
    # Without a terminal, the name typed out on the command line: nothing left to delete.
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: False)
    flags = ("--delete-bucket", "--confirm-bucket", BUCKET, "--delete-service-account")
    code, _, err = _govctl(capsys, "destroy", *flags, "-y")
    assert code == 0 and "nothing to do" in err


def test_secrets_and_their_grants(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVCTL_JOB_SECRETS", "GITHUB_TOKEN=github-token")
    _ok(capsys, "setup", "-y")
    _ok(capsys, "setup", "-y")  # the secrets API is on now: setup plans the rest
    monkeypatch.setattr("sys.stdin", _stdin(b"ghp_value\n"))
    _ok(capsys, "secrets", "set", "GITHUB_TOKEN")
    secret = f"projects/{PROJECT}/secrets/github-token"

    # Kept: the job's read access on it, which setup granted, goes.
    code, out, err = _govctl(capsys, "destroy", "-y")
    assert code == 0, err
    grant = f"roles/secretmanager.secretAccessor for {SA} on secret github-token"
    assert f"- iam {grant}" in _lines(out) and f"removed {grant}" in err
    assert "secret(s) github-token stay: `--delete-secrets` deletes them" in out
    policy = clients.secret_manager().get_iam_policy(request={"resource": secret})
    assert not [b for b in policy.bindings if f"serviceAccount:{SA}" in b.members]
    assert clients.secret_manager().get_secret(name=secret)

    code, out, err = _govctl(capsys, "destroy", "--delete-secrets", "-y")
    assert code == 0, err
    assert "- secret github-token" in _lines(out) and "deleted secret github-token" in err
    with pytest.raises(exceptions.NotFound):
        clients.secret_manager().get_secret(name=secret)


def _stdin(data: bytes) -> Any:
    import io

    return io.TextIOWrapper(io.BytesIO(data))


def test_a_running_execution_is_cancelled_before_its_job_goes(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _ok(capsys, "setup", "-y")
    _ok(capsys, "deploy", "--build", "cloud", "-y")
    # The job's task sleeps: it runs until it is cancelled.
    job = clients.jobs().get_job(name=JOB_PATH)
    job.template.template.containers[0].image = "example.org/sleeper:1"
    job.template.template.containers[0].command = ["python", "-c", "import time; time.sleep(300)"]
    clients.jobs().update_job(job=job).result(polling=FAST_POLL)
    op = clients.jobs().run_job(request=run_v2.RunJobRequest(name=JOB_PATH))
    execution = op.metadata.name.rsplit("/", 1)[-1]
    _until_running(op.metadata.name)

    code, out, err = _govctl(capsys, "destroy", "-y")
    assert code == 0, err
    assert _lines(out)[:3] == [
        f"- scheduler {SCHEDULE}",
        f"- execution {execution}",
        f"- run job {JOB}",
    ]
    assert "status  running: cancelled first" in out
    said = err.splitlines()
    assert said.index(f"cancelled execution {execution}") < said.index(f"deleted run job {JOB}")
    assert _left()["jobs"] == []


def _until_running(name: str, wait: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + wait
    while clients.executions().get_execution(name=name).running_count < 1:
        assert time.monotonic() < deadline, "the execution never started"
        time.sleep(0.05)


def test_a_deletion_that_fails_is_said_and_the_rest_still_go(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployed(capsys)
    channel = _left()["channels"][0]

    def someone_else_uses_the_channel(question: str) -> bool:
        # Between the plan and the apply, an operator's own policy takes the channel up:
        # deleting it now would silence that policy, so Cloud Monitoring refuses (no force).
        condition = monitoring_v3.AlertPolicy.Condition(
            display_name="theirs",
            condition_matched_log=monitoring_v3.AlertPolicy.Condition.LogMatch(
                filter="severity>=ERROR"
            ),
        )
        clients.alert_policies().create_alert_policy(
            name=f"projects/{PROJECT}",
            alert_policy=monitoring_v3.AlertPolicy(
                display_name="their own policy",
                combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR,
                conditions=[condition],
                notification_channels=[channel],
                alert_strategy={"notification_rate_limit": {"period": {"seconds": 300}}},
            ),
        )
        return True

    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.confirm", someone_else_uses_the_channel)
    code, out, err = _govctl(capsys, "destroy")
    assert code == 1
    assert f"error: channel {EMAIL}: delete notification channel {channel}:" in err
    assert (
        err.strip().splitlines()[-1].startswith(f"error: 1 deletion failed; left: channel {EMAIL}")
    )
    # What came after the failure in the order was still deleted.
    left = _left()
    assert left["data_stores"] == [] and left["repositories"] == [] and left["jobs"] == []
    assert left["channels"] == [channel]
    # The channel is someone else's to keep now: a rerun says so, and has nothing to do.
    code, out, err = _govctl(capsys, "destroy", "-y")
    assert code == 0 and "nothing to do" in err
    assert f"e-mail channel {EMAIL} stays: alert policy 'their own policy'" in out


def test_bad_input_is_exit_2_before_any_call(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens: no call made
    for argv, says in [
        (["destroy", "--exit-code"], "--exit-code needs --dry-run"),
        (["destroy", "--confirm-bucket", "x"], "--confirm-bucket needs --delete-bucket"),
    ]:
        code, out, err = _govctl(capsys, *argv)
        assert (code, out) == (2, ""), err
        assert says in err and len(err.strip().splitlines()) == 1


def test_a_resource_gone_by_the_time_of_its_deletion_is_no_error(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, "setup", "-y")
    _ok(capsys, "deploy", "--build", "cloud", "-y")

    def someone_else_deletes_the_schedule(question: str) -> bool:
        clients.scheduler().delete_job(name=f"{PARENT}/jobs/{SCHEDULE}")
        return True

    monkeypatch.setattr("govctl.cli.options.interactive", lambda: True)
    monkeypatch.setattr("govctl.render.confirm", someone_else_deletes_the_schedule)
    code, _, err = _govctl(capsys, "destroy")
    assert code == 0, err
    assert f"scheduler {SCHEDULE}: already gone" in err and f"deleted run job {JOB}" in err
    assert _left()["jobs"] == [] and _left()["schedules"] == []


def test_an_api_that_is_off_is_not_read_and_the_plan_says_so(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # A project that never had a search index: Discovery Engine's API is off (setup enables it
    # only with --with-index), and reading a data store there is refused by Google.
    clients.service_usage().disable_service(
        request=service_usage_v1.DisableServiceRequest(
            name=f"projects/{PROJECT}/services/discoveryengine.googleapis.com"
        )
    ).result()
    _ok(capsys, "setup", "-y")
    code, out, err = _govctl(capsys, "destroy", "--dry-run")
    assert code == 0, err
    assert "not read, their APIs being off: discoveryengine (the data store)" in out
    assert "- data store" not in out


def test_a_repository_govctl_did_not_create_keeps_all_but_the_image_and_the_push_right(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import artifactregistry_v1 as ar

    client = clients.artifact_registry()
    theirs = ar.Repository(format_=ar.Repository.Format.DOCKER, description="the team's")
    theirs.cleanup_policies["team-keep"] = ar.CleanupPolicy(
        id="team-keep", action=ar.CleanupPolicy.Action.KEEP,
        most_recent_versions=ar.CleanupPolicyMostRecentVersions(keep_count=3),
    )  # fmt: skip
    client.create_repository(
        parent=PARENT, repository_id="govreposcrape", repository=theirs
    ).result(timeout=5)
    _ok(capsys, "setup", "-y")  # grants the build account the push right on it
    _ok(capsys, "deploy", "--build", "cloud", "-y")

    code, out, err = _govctl(capsys, "destroy", "-y")
    assert code == 0, err
    path = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
    assert f"- image {path}" in _lines(out)
    assert f"- iam {PUSHER} for {BUILD_SA} on repository govreposcrape" in _lines(out)
    # govctl's cleanup policies go too: left, they would thin out a later image of that name.
    assert f"- cleanup policy govreposcrape ({REGION}): ingestion" in _lines(out)
    assert "removed cleanup policies govctl-delete-older, govctl-keep-deployed" in err
    assert (
        f"repository govreposcrape ({REGION}-docker.pkg.dev/{PROJECT}) stays: govctl did "
        "not create it" in out
    )
    assert client.get_repository(name=REPOSITORY).description == "the team's"
    assert list(client.get_repository(name=REPOSITORY).cleanup_policies) == ["team-keep"]
    assert list(client.list_docker_images(parent=REPOSITORY)) == []
    policy = client.get_iam_policy(request={"resource": REPOSITORY})
    assert not [b for b in policy.bindings if f"serviceAccount:{BUILD_SA}" in b.members]
