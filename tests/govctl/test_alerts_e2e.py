"""`govctl alerts` end to end on the loopback cloud: the policies it writes are the ones that
fire when the real ingestion job fails, and the e-mail names the execution."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from govctl.cli.main import main
from govctl.emulator.monitoring.conditions import read_mailbox
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.govctl.test_run_e2e import BUCKET, JOB, PROJECT, REGION, _create_job, _feed, _repos
from tests.support.cloud import Completions, check_absence, job_cloud
from tests.support.git import GitServer

EMAIL = "ops@example.org"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with job_cloud(tmp_path, monkeypatch, project=PROJECT, region=REGION, bucket=BUCKET,
                   settings={"GOVCTL_JOB_NAME": JOB}) as emu:  # fmt: skip
        yield emu


def _govctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _mail(emu: Emulator) -> list[dict[str, Any]]:
    """The mailbox now. Callers first make sure that what they expect has been evaluated:
    the executions' completions handled (Completions), the absence check run at the clock's
    time (check_absence), or a scheduler attempt returned (it logs, and Monitoring reads the
    entry, before RunJob returns)."""
    assert emu.state_dir is not None
    return read_mailbox(emu.state_dir)


def _policies() -> list[Any]:
    return list(clients.alert_policies().list_alert_policies(name=f"projects/{PROJECT}"))


def test_a_failed_run_mails_the_operator_once_and_a_second_set_writes_nothing(
    cloud: Emulator, git_server: GitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    completions = Completions(cloud)
    code, out, err = _govctl(capsys, "alerts", "set", "--email", EMAIL, "-y")
    assert code == 0, err
    assert f"+ channel   {EMAIL}" in out
    assert "+ policy    govreposcrape: execution failed" in out
    # Two intervals of the daily schedule (48h) are over Cloud Monitoring's longest window.
    assert "+ policy    govreposcrape: no successful execution in 24h30m" in out
    assert "warning: two schedule intervals (48h) exceed" in err
    assert "+ policy    govreposcrape: scheduler attempt failed" in out
    assert "4 to add, 0 to change, 0 unchanged." in out
    assert "created alert policy 'govreposcrape: execution failed'" in err
    before = {p.name: p.mutation_record.mutate_time for p in _policies()}
    assert len(before) == 3

    # A run of the real job that fails: its feed cannot be read.
    _create_job("http://127.0.0.1:9/repos.json", git_server)
    code, _, _ = _govctl(capsys, "run")
    assert code == 1
    (execution,) = clients.executions().list_executions(
        parent=f"projects/{PROJECT}/locations/{REGION}/jobs/{JOB}"
    )
    execution_id = execution.name.rsplit("/", 1)[1]

    completions.wait(1)
    (message,) = _mail(cloud)
    assert message["to"] == EMAIL
    assert "govreposcrape: execution failed" in message["subject"]
    assert f"job_name={JOB}" in message["subject"]
    assert execution_id in message["body"] and "result failed" in message["body"]
    assert "`govctl logs --errors --latest`" in message["body"]
    assert message["execution"] == execution.name

    # Again, with the same input or none: no changes, nothing written.
    for argv in (("--email", EMAIL), ()):
        code, out, err = _govctl(capsys, "alerts", "set", *argv, "-y")
        assert code == 0, err
        assert "no changes" in err and "0 to add, 0 to change, 4 unchanged." in out
    assert {p.name: p.mutation_record.mutate_time for p in _policies()} == before
    assert len(list(clients.notification_channels().list_notification_channels(
        name=f"projects/{PROJECT}"))) == 1  # fmt: skip

    code, out, _ = _govctl(capsys, "alerts", "show")
    assert code == 0
    assert f"{EMAIL}  email  enabled  govctl" in out
    assert "govreposcrape: execution failed" in out and "metric-threshold" in out
    data = json.loads(_govctl(capsys, "alerts", "show", "--json")[1])
    assert [c["email"] for c in data["channels"]] == [EMAIL]
    kinds = sorted(c["kind"] for p in data["policies"] for c in p["conditions"])
    assert kinds == ["log-match", "metric-absence", "metric-threshold"]
    assert all(p["enabled"] and p["channels"] == [EMAIL] for p in data["policies"])


def test_a_successful_run_mails_nobody(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    completions = Completions(cloud)
    assert _govctl(capsys, "alerts", "set", "--email", EMAIL, "-y")[0] == 0
    _repos(git_server, ["frontend"])
    _create_job(str(_feed(tmp_path / "repos.json", git_server, ["frontend"])), git_server)
    code, _, err = _govctl(capsys, "run")
    assert code == 0, err
    completions.wait(1)
    assert _mail(cloud) == []


def test_new_addresses_and_window_change_only_what_differs(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _govctl(capsys, "alerts", "set", "--email", EMAIL, "-y")[0] == 0

    code, out, err = _govctl(capsys, "alerts", "set", "--stale-after", "20h", "--dry-run")
    assert code == 0
    assert "warning" not in err  # an existing window is not a default
    assert "~ policy    govreposcrape: no successful execution in 20h" in out
    assert "duration       24h30m  →  20h" in out
    assert "1 to change" in out
    assert len(_policies()) == 3  # dry run: nothing written
    # The same flow as deploy's: --exit-code says there is something to apply.
    assert (
        _govctl(capsys, "alerts", "set", "--stale-after", "20h", "--dry-run", "--exit-code")[0] == 3
    )

    code, out, err = _govctl(
        capsys, "alerts", "set", "--email", "oncall@example.org", "--stale-after", "20h", "-y"
    )
    assert code == 0, err
    assert "+ channel   oncall@example.org" in out and f"- channel   {EMAIL}" in out
    assert f"      display_name  govctl: {EMAIL}\n" in out  # what the deletion removes
    assert "1 to add, 3 to change, 1 to delete, 0 unchanged." in out
    data = json.loads(_govctl(capsys, "alerts", "show", "--json")[1])
    assert [c["email"] for c in data["channels"]] == ["oncall@example.org"]
    assert all(p["channels"] == ["oncall@example.org"] for p in data["policies"])
    assert _govctl(capsys, "alerts", "set", "-y")[2].strip().endswith("no changes")
    assert _govctl(capsys, "alerts", "set", "--dry-run", "--exit-code")[0] == 0
    plan = json.loads(_govctl(capsys, "alerts", "set", "--json", "--dry-run")[1])
    assert plan["summary"] == {"to_add": 0, "to_change": 0, "to_delete": 0, "unchanged": 4}
    assert plan["stale_after"] == "20h" and plan["warnings"] == []
    assert [r["kind"] for r in plan["resources"]] == ["channel", "policy", "policy", "policy"]


def test_first_set_needs_an_address(cloud: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _govctl(capsys, "alerts", "set", "-y")
    assert code == 2
    assert "no e-mail address to alert — pass --email ADDRESS" in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("--email", "ops.example.org"), "invalid --email 'ops.example.org': expected an e-mail"),
        (("--email", "a@b.c", "--email", "x@@y.z"), "invalid --email 'x@@y.z'"),
        (("--email", "a@b.co", "--stale-after", "soon"), "invalid --stale-after 'soon'"),
        (("--email", "a@b.co", "--stale-after", "90s"), "expected whole minutes from 2m to 24h30m"),
        (("--email", "a@b.co", "--stale-after", "2d"), "invalid --stale-after '2d'"),
    ],
)
def test_bad_input_exits_2_in_one_line_without_a_call(
    argv: tuple[str, ...],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No emulator at all: any API call would fail with exit 1, not 2.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    code, out, err = _govctl(capsys, "alerts", "set", *argv, "-y")
    assert code == 2
    assert said in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_help_of_alerts_imports_no_google_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from govctl.cli.main import main\n"
        "helps = [['alerts', '--help'], ['alerts', 'set', '--help'], ['alerts', 'show', '-h']]\n"
        "assert [main(argv) for argv in helps] == [0] * 3\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_status_for_doctor_warns_until_alerts_are_set_and_enabled(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from govctl import config
    from govctl.services import alerts

    cfg = config.load()
    first = alerts.status(cfg)
    assert first.level == "warn" and first.fix == "run `govctl alerts set --email ADDRESS`"
    assert _govctl(capsys, "alerts", "set", "--email", EMAIL, "-y")[0] == 0
    assert alerts.status(cfg) == alerts.Status("ok", f"3 alert policies, e-mail to {EMAIL}")

    policy = next(p for p in _policies() if p.display_name.endswith("execution failed"))
    policy.enabled = False
    clients.alert_policies().update_alert_policy(
        alert_policy=policy, update_mask={"paths": ["enabled"]}
    )
    said = alerts.status(cfg)
    assert said.level == "warn"
    assert said.summary == "alerts incomplete (disabled: govreposcrape: execution failed)"
    # and `alerts set` puts it right
    code, out, _ = _govctl(capsys, "alerts", "set", "-y")
    assert code == 0 and "~ policy    govreposcrape: execution failed" in out
    assert "      enabled  False  →  True" in out
    assert alerts.status(cfg).level == "ok"


def test_the_scheduler_and_staleness_policies_fire_on_what_they_watch(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import scheduler_v1

    completions = Completions(cloud)
    assert _govctl(capsys, "alerts", "set", "--email", EMAIL, "-y")[0] == 0
    # The schedule's attempt fails (its service account does not exist): the log-based policy.
    parent = f"projects/{PROJECT}/locations/{REGION}"
    sched = clients.scheduler()
    job = sched.create_job(
        parent=parent,
        job=scheduler_v1.Job(
            name=f"{parent}/jobs/govreposcrape-daily-ingest",
            schedule="0 2 * * *",
            http_target=scheduler_v1.HttpTarget(
                uri=f"https://run.googleapis.com/v2/{parent}/jobs/{JOB}:run",
                oauth_token={"service_account_email": f"nobody@{PROJECT}.iam.gserviceaccount.com"},
            ),
        ),
    )
    sched.run_job(name=job.name)
    (message,) = _mail(cloud)
    assert "govreposcrape: scheduler attempt failed on cloud_scheduler_job" in message["subject"]
    assert "`govctl logs --scheduler`" in message["body"]

    # A successful run, then nothing for longer than the window: the absence policy.
    sched.pause_job(name=job.name)  # (its next cron time would fail and mail again)
    _repos(git_server, ["frontend"])
    _create_job(str(_feed(tmp_path / "repos.json", git_server, ["frontend"])), git_server)
    assert _govctl(capsys, "run")[0] == 0
    completions.wait(1)  # Monitoring has the point
    cloud.cloud.clock.advance(timedelta(hours=24, minutes=31))
    check_absence(cloud)
    first, stale = _mail(cloud)
    assert first == message
    assert "govreposcrape: no successful execution in 24h30m" in stale["subject"]
    assert "`govctl schedule show`" in stale["body"]


def test_a_policy_changed_after_the_plan_is_not_overwritten(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from govctl import config
    from govctl.errors import GovctlError
    from govctl.services import alerts

    assert _govctl(capsys, "alerts", "set", "--email", EMAIL, "-y")[0] == 0
    cfg = config.load()
    plan = alerts.plan(cfg, None, timedelta(hours=20))
    assert [r.action for r in plan.policies] == ["unchanged", "update", "unchanged"]
    stale = next(p for p in _policies() if "no successful execution" in p.display_name)
    stale.display_name = "someone else's name"
    clients.alert_policies().update_alert_policy(
        alert_policy=stale, update_mask={"paths": ["display_name"]}
    )
    with pytest.raises(GovctlError, match="changed since the plan was made"):
        alerts.apply(plan)
    assert clients.alert_policies().get_alert_policy(name=stale.name).display_name == (
        "someone else's name"
    )
