"""`govctl doctor` reports drift between the settings and what is deployed — the job, the
schedule, the alerts — from the plans deploy and alerts set make, with the command that
reconciles it; applying those commands makes it go away. End to end through the CLI against
the loopback cloud."""

from __future__ import annotations

import json
from typing import Any

import pytest

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL
from tests.govctl.test_deploy import JOB, create_prerequisites, deploy


def doctor(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture
def deployed(cloud: Emulator, capsys: pytest.CaptureFixture[str]) -> Emulator:
    create_prerequisites()
    assert deploy("-y") == 0
    assert main(["alerts", "set", "--email", "ops@example.org", "-y"]) == 0
    return cloud


def test_in_sync_after_deploy_and_alerts_set(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = doctor(capsys)
    job = checks["job drift"]
    assert (job["status"], job["evidence"]) == (
        "ok",
        "govreposcrape-ingestion is as the settings say",
    )
    assert checks["schedule drift"]["status"] == "ok"
    assert "(0 2 * * *, Etc/UTC)" in checks["schedule drift"]["evidence"]
    assert checks["alerts drift"]["status"] == "ok"


def test_a_schedule_set_by_hand_is_drift_with_both_ways_to_reconcile(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "set", "0 2,14 * * *", "-y"]) == 0
    check = doctor(capsys)["schedule drift"]
    assert check["status"] == "warn"
    assert check["evidence"] == (
        "govreposcrape-daily-ingest differs from the settings: cron 0 2,14 * * * → 0 2 * * *"
    )
    assert check["fix"] == (
        'govctl schedule set "0 2 * * *" --time-zone Etc/UTC (or govctl deploy) applies the '
        'settings, or keep what is deployed: [schedule] cron = "0 2,14 * * *" in govctl.toml'
    )
    # The staleness alert's e-mail still names the old schedule: that is alerts drift, which
    # `alerts set` reconciles (it writes the schedule the job runs on).
    alerts = doctor(capsys)["alerts drift"]
    assert alerts["status"] == "warn"
    assert "policy govreposcrape: no successful execution in 24h30m: update" in alerts["evidence"]
    assert main(["alerts", "set", "-y"]) == 0
    assert doctor(capsys)["alerts drift"]["status"] == "ok"

    # Keep the live one, as the fix says: no drift.
    (deployed.state_dir.parent / "govctl.toml").write_text(  # type: ignore[union-attr]
        '[schedule]\ncron = "0 2,14 * * *"\n'
    )
    assert doctor(capsys)["schedule drift"]["status"] == "ok"


def test_a_job_changed_behind_govctls_back_is_drift_and_deploy_reconciles_it(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `gcloud run jobs update --memory=8Gi --task-timeout=12h` does.
    job = clients.jobs().get_job(name=JOB)
    job.template.template.containers[0].resources.limits["memory"] = "8Gi"
    job.template.template.timeout = "43200s"
    clients.jobs().update_job(job=job).result(polling=FAST_POLL)

    check = doctor(capsys)["job drift"]
    assert check["status"] == "warn"
    assert check["evidence"] == (
        "govreposcrape-ingestion differs from the settings: memory 8Gi → 4Gi, task_timeout 12h → 6h"
    )
    assert check["fix"] == (
        "govctl deploy applies the settings (`govctl deploy --dry-run` shows the plan), or "
        'keep what is deployed: [job] memory = "8Gi", task_timeout = "12h" in govctl.toml'
    )
    assert deploy("-y") == 0
    assert doctor(capsys)["job drift"]["status"] == "ok"


def test_alerts_unlike_the_alerts_settings_are_drift_and_alerts_set_reconciles_them(
    deployed: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVCTL_ALERTS_EMAILS", "oncall@example.org")
    monkeypatch.setenv("GOVCTL_ALERTS_STALE_AFTER", "2h")
    check = doctor(capsys)["alerts drift"]
    assert check["status"] == "warn"
    assert "channel oncall@example.org: create" in check["evidence"]
    assert "channel ops@example.org: delete" in check["evidence"]
    assert check["fix"].startswith("govctl alerts set applies the settings")
    assert main(["alerts", "set", "-y"]) == 0
    assert doctor(capsys)["alerts drift"]["status"] == "ok"


def test_status_shows_the_live_schedule_and_that_the_settings_differ(
    deployed: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "set", "0 2,14 * * *", "-y"]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Schedule  0 2,14 * * * — At 02:00 and 14:00 (Etc/UTC) · ENABLED" in out
    assert "the settings say '0 2 * * *' (Etc/UTC): `govctl doctor` shows the drift" in out
