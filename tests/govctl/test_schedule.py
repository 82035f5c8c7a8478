"""`govctl schedule` end to end: the CLI against the loopback cloud's Cloud Scheduler, state
read back with the official clients."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from google.cloud import scheduler_v1

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import schedule as service
from tests.govctl.test_deploy import JOB, PARENT, SA, SCHEDULE, create_prerequisites, deploy


@pytest.fixture
def deployed(cloud: Emulator, capsys: pytest.CaptureFixture[str]) -> Iterator[Emulator]:
    create_prerequisites()
    assert deploy("-y") == 0
    capsys.readouterr()
    yield cloud


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The operator's zone, made explicit so the local column can be checked."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield "America/New_York"
    monkeypatch.undo()
    time.tzset()


def schedule(*argv: str) -> int:
    return main(["schedule", *argv])


def stored() -> scheduler_v1.Job:
    return clients.scheduler().get_job(name=SCHEDULE)


def test_show_says_what_when_where_and_as_whom(
    deployed: Emulator, local_zone: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schedule("show") == 0
    out = capsys.readouterr().out
    assert "cron          0 2 * * *  (At 02:00)" in out
    assert "time zone     Etc/UTC" in out and "state         ENABLED" in out
    assert "last attempt  never" in out
    assert f"target        POST https://run.googleapis.com/v2/{JOB}:run" in out
    assert f"runs as       {SA} (OAuth token, scope https://www.googleapis.com/auth/" in out
    # Each in the schedule's zone, and the operator's beside it (it reads differently).
    day = r"(\d{4}-\d\d-\d\d )?"
    shown = rf"\n  {day}02:00 UTC \({day}(21:00 EST|22:00 EDT) local\)"
    assert len(re.findall(shown, out)) == 5, out

    assert schedule("show", "--next", "3", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["description"] == "At 02:00"
    assert data["target_uri"] == f"https://run.googleapis.com/v2/{JOB}:run"
    assert data["service_account"] == SA and data["auth"] == "oauth"
    runs = [datetime.fromisoformat(r["time"]) for r in data["next_runs"]]
    assert len(runs) == 3 and all(r.hour == 2 and r.minute == 0 for r in runs)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(runs))
    assert runs[0] > datetime.now(UTC)
    # The same instants in the operator's zone.
    local = [datetime.fromisoformat(r["local_time"]) for r in data["next_runs"]]
    assert local == runs and {t.utcoffset() for t in local} <= {
        timedelta(hours=-5),
        timedelta(hours=-4),
    }
    # The service computes the next fire time as the emulated Cloud Scheduler does.
    assert runs[0] == stored().schedule_time


@pytest.fixture
def london(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The operator in London (GMT in winter, BST in summer)."""
    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    yield "Europe/London"
    monkeypatch.undo()
    time.tzset()


def test_times_read_in_the_operators_zone_and_the_schedules(
    deployed: Emulator, london: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one time format, end to end: a summer fire time of a UTC schedule reads in UTC with
    London's BST beside it; a winter one in UTC alone (GMT reads the same); status names the
    zone of the deployment's time."""
    assert schedule("set", "0 2 1 7 *", "-y") == 0
    capsys.readouterr()
    assert schedule("show", "--next", "1") == 0
    now = datetime.now(UTC)
    year = now.year if now < datetime(now.year, 7, 1, 2, tzinfo=UTC) else now.year + 1
    assert f"  {year}-07-01 02:00 UTC ({year}-07-01 03:00 BST local)\n" in capsys.readouterr().out
    assert schedule("set", "0 2 1 1 *", "-y") == 0
    capsys.readouterr()
    assert schedule("show", "--next", "1") == 0
    assert re.search(r"\n  \d{4}-01-01 02:00 UTC\n", capsys.readouterr().out)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    here = datetime.now(ZoneInfo("Europe/London")).tzname()
    assert re.search(rf", deployed (\d{{4}}-\d\d-\d\d )?\d\d:\d\d:\d\d {here}\n", out), out
    assert "+00:00" not in out and "(+0" not in out


def test_fire_times_follow_the_wall_clock_across_dst() -> None:
    after = datetime(2027, 3, 26, 12, tzinfo=UTC)
    times = service.fire_times("30 1 * * *", "Europe/London", 3, after)
    assert [t.at.isoformat() for t in times] == [
        "2027-03-27T01:30:00+00:00",
        "2027-03-28T02:30:00+01:00",  # clocks go from 01:00 to 02:00: 01:30 does not exist
        "2027-03-29T01:30:00+01:00",
    ]
    assert [t.dst for t in times] == ["", "gap", ""]
    autumn = service.fire_times(
        "30 1 * * *", "Europe/London", 2, datetime(2027, 10, 30, tzinfo=UTC)
    )
    assert [t.dst for t in autumn] == ["", "overlap"]
    assert service.dst_anomalies("0 2 * * *", "Etc/UTC") == []
    found = service.dst_anomalies(
        "0 2 * * *", "America/New_York", datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert [(f.at.date().isoformat(), f.dst) for f in found] == [("2027-03-14", "gap")]
    # Intervals are measured in real time, not on the wall clock: the week with the spring
    # change is an hour short.
    sunday = datetime(2027, 3, 20, tzinfo=UTC)
    shortest = service.shortest_interval("0 2 * * 0", "Europe/London", sunday)
    assert shortest == timedelta(days=6, hours=23)
    assert service.shortest_interval("0 2,14 * * *", "Etc/UTC") == timedelta(hours=12)


@pytest.mark.parametrize(
    ("cron", "words"), [("0 2,14 * * *", "At 02:00 and 14:00"), ("0 2 * * 0", "only on Sunday")]
)
def test_set_the_seeds_examples(
    deployed: Emulator, capsys: pytest.CaptureFixture[str], cron: str, words: str
) -> None:
    assert schedule("set", cron, "-y") == 0
    captured = capsys.readouterr()
    assert f"  cron       0 2 * * *  →  {cron}" in captured.out
    assert words in captured.out
    fire = r"\n    (\d{4}-\d\d-\d\d )?\d\d:00 UTC"  # in the schedule's zone (here the operator's)
    assert len(re.findall(fire, captured.out)) == 3  # the next 3 fire times
    assert f"updated: {cron} (Etc/UTC)" in captured.err
    # The settings still hold the old cron: the operator is told deploy would revert it.
    assert "the next `govctl deploy` puts them back" in captured.err
    job = stored()
    assert job.schedule == cron and job.time_zone == "Etc/UTC"
    # Only the schedule moved: target and identity are as deploy left them.
    assert job.http_target.uri == f"https://run.googleapis.com/v2/{JOB}:run"
    assert job.http_target.oauth_token.service_account_email == SA


def test_set_with_a_zone_warns_about_dst(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schedule("set", "30 1 * * *", "--time-zone", "Europe/London", "-y") == 0
    err = capsys.readouterr().err
    assert "in Europe/London is in a DST gap" in err and "Etc/UTC has no DST" in err
    job = stored()
    assert (job.schedule, job.time_zone) == ("30 1 * * *", "Europe/London")


def test_set_warns_when_runs_would_overlap(
    deployed: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "recent_run_time", lambda cfg: timedelta(hours=13))
    assert schedule("set", "0 2,14 * * *", "-y") == 0
    err = capsys.readouterr().err
    assert "runs may overlap: it fires every 12h at the shortest, and recent runs took 13h" in err


def test_set_the_same_schedule_changes_nothing(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stored().user_update_time
    assert schedule("set", "0 2 * * *") == 0  # no -y needed: nothing to confirm
    assert "no changes" in capsys.readouterr().err
    assert stored().user_update_time == before


def test_set_without_a_terminal_or_yes_refuses(
    deployed: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: False)
    assert schedule("set", "0 3 * * *") == 2
    assert "refusing to apply without confirmation" in capsys.readouterr().err
    assert stored().schedule == "0 2 * * *"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set", "0 2 * *"], "invalid CRON '0 2 * *': expected a five-field unix cron"),
        (["set", "every day"], "invalid CRON 'every day'"),
        (["set", "0 25 * * *"], "invalid CRON '0 25 * * *'"),
        (["set", "0 2 * * *", "--time-zone", "Europe/Londn"], "did you mean Europe/London?"),
        (["show", "--next", "0"], "--next"),
    ],
)
def test_bad_input_exits_2_before_any_call(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", "deploy-project")
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens: no call made
    assert schedule(*argv) == 2
    assert message in capsys.readouterr().err


def test_pause_and_resume_are_idempotent_and_say_what_changed(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schedule("pause") == 0
    assert "paused govreposcrape-daily-ingest (was ENABLED)" in capsys.readouterr().err
    assert stored().state == scheduler_v1.Job.State.PAUSED
    assert schedule("pause") == 0
    assert "was already paused: nothing changed" in capsys.readouterr().err
    assert schedule("show") == 0
    assert "next runs     none while PAUSED" in capsys.readouterr().out

    assert schedule("resume") == 0
    assert "resumed govreposcrape-daily-ingest (was PAUSED); next run " in capsys.readouterr().err
    assert stored().state == scheduler_v1.Job.State.ENABLED
    assert schedule("resume") == 0
    assert "was already enabled: nothing changed" in capsys.readouterr().err


def test_trigger_prints_the_execution_it_started(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schedule("trigger") == 0
    captured = capsys.readouterr()
    executions = list(clients.executions().list_executions(parent=JOB))
    assert len(executions) == 1
    started = executions[0].name.rsplit("/", 1)[1]
    assert captured.out == f"{started}\n"
    assert f"next: govctl executions show {started}" in captured.err

    assert schedule("show", "--json") == 0
    last = json.loads(capsys.readouterr().out)["last_attempt"]
    assert last["status"] == "OK" and started in last["message"]

    assert schedule("trigger", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    newest = next(iter(clients.executions().list_executions(parent=JOB)))
    assert data["execution_name"] == newest.name and data["execution"] != started


def test_trigger_without_the_invoker_binding_says_which_role_is_missing(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = clients.jobs().get_iam_policy(request={"resource": JOB})
    del policy.bindings[:]
    clients.jobs().set_iam_policy(request={"resource": JOB, "policy": policy})
    assert schedule("trigger") == 1
    err = capsys.readouterr().err
    assert "PERMISSION_DENIED" in err and "needs roles/run.invoker on the job" in err
    assert "run `govctl deploy`" in err
    assert list(clients.executions().list_executions(parent=JOB)) == []


def test_schedule_commands_before_deploy_say_to_deploy(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["show"], ["pause"], ["trigger"], ["set", "0 3 * * *", "-y"]):
        assert schedule(*argv) == 1
        assert "does not exist — run `govctl deploy` first" in capsys.readouterr().err
    assert list(clients.scheduler().list_jobs(parent=PARENT)) == []


def test_trigger_works_again_once_the_binding_is_back(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = clients.jobs().get_iam_policy(request={"resource": JOB})
    saved = list(policy.bindings)
    del policy.bindings[:]
    policy = clients.jobs().set_iam_policy(request={"resource": JOB, "policy": policy})
    assert schedule("trigger") == 1  # refused: the scheduler job now carries that failure
    capsys.readouterr()
    policy.bindings.extend(saved)
    clients.jobs().set_iam_policy(request={"resource": JOB, "policy": policy})
    assert schedule("trigger") == 0
    assert len(list(clients.executions().list_executions(parent=JOB))) == 1
