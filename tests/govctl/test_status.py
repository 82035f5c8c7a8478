"""`govctl status` end to end: deploy and run the real job on the loopback cloud, then read the
morning screen (text and JSON) back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from tests.govctl.test_deploy import BUCKET, PROJECT, REGION, create_prerequisites
from tests.support.cloud import job_cloud
from tests.support.git import GitServer, make_repo


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with job_cloud(tmp_path, monkeypatch, project=PROJECT, region=REGION,
                   settings={"GOVCTL_BUCKET_NAME": BUCKET}) as emu:  # fmt: skip
        yield emu


def _status(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["status", *args]) == 0
    return capsys.readouterr().out


def test_status_before_and_after_deploy_and_two_runs(
    cloud: Emulator,
    git_server: GitServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _status(capsys)
    assert "govreposcrape-ingestion is not deployed — next: govctl deploy" in out
    assert "Schedule  none" in out and "missing — create it with `govctl setup`" in out
    assert "No executions yet" in out

    make_repo(git_server.root / "alphagov" / "frontend", {"README.md": "# frontend\n"})
    feed = [
        {"owner": "alphagov", "name": name, "url": git_server.url(f"alphagov/{name}"),
         "pushedAt": "2026-11-01T00:00:00Z"}
        for name in ("frontend", "deleted-repo")
    ]  # fmt: skip
    (tmp_path / "repos.json").write_text(json.dumps(feed))
    monkeypatch.setenv("GOVCTL_JOB_FEED", (tmp_path / "repos.json").as_uri())
    monkeypatch.setenv("GOVCTL_JOB_ARGS", f"--allow-host {git_server.host}")
    create_prerequisites()
    assert main(["deploy", "--allow-dirty", "-y"]) == 0
    assert main(["run"]) == 1  # deleted-repo cannot be cloned: a new failure
    assert main(["run"]) == 0  # nothing changed, and deleted-repo is a known failure

    out = _status(capsys)
    assert f"govreposcrape-ingestion · {PROJECT} · {REGION}" in out
    assert "…/ingestion@sha256:" in out and "deployed " in out
    assert "2 vCPU · 4Gi · 1 task(s) · timeout 6h · retries 0" in out
    assert "0 2 * * * — At 02:00 (Etc/UTC) · ENABLED" in out and "next " in out
    assert f"gs://{BUCKET} " in out and ": 1 digests," in out
    assert "1 repository keeps failing: alphagov/deleted-repo (not_found since " in out
    assert "about $" in out and "a month" in out
    rows = [
        line.split() for line in out.splitlines() if line.startswith("govreposcrape-ingestion-")
    ]
    # newest first: status, …, tasks ok, processed, unchanged, failed
    assert [(r[1], r[-3], r[-2], r[-1]) for r in rows] == [
        ("succeeded", "0", "1", "0"),
        ("failed", "1", "0", "1"),
    ]

    data = json.loads(_status(capsys, "--json"))
    assert data["job"]["tasks"] == 1 and data["job"]["image"].count("@sha256:") == 1
    assert data["schedule"]["state"] == "ENABLED" and data["schedule"]["description"]
    assert [e["status"] for e in data["executions"]] == ["succeeded", "failed"]
    assert data["executions"][1]["reports"]["failed"] == 1
    assert data["bucket"]["digests"] == 1
    assert [f["repo"] for f in data["persistent_failures"]] == ["alphagov/deleted-repo"]
    assert data["cost_per_month_usd"] > 0


def test_a_part_that_cannot_be_read_says_why_and_the_rest_shows(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    create_prerequisites()
    monkeypatch.setenv("GOVCTL_BUCKET_NAME", "no-such-bucket")
    out = _status(capsys)
    assert "Bucket    missing — create it with `govctl setup`" in out
    assert "not deployed" in out


def test_commands_talk_to_the_cloud_their_settings_name(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The emulator's addresses in govctl.toml alone (no environment) reach every client:
    gRPC (Cloud Run) and storage (fake-gcs-server) alike."""
    env = cloud.env()
    Path("govctl.toml").write_text(
        f'[cloud]\nemulator = "{env["GOVCTL_EMULATOR_HOST"]}"\n'
        f'storage_emulator = "{env["STORAGE_EMULATOR_HOST"]}"\n'
    )
    monkeypatch.delenv("GOVCTL_EMULATOR_HOST")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    # The emulator answers: the job is not deployed (without it: no Google credentials).
    assert main(["executions", "list"]) == 1
    assert f"in project '{PROJECT}' does not exist" in capsys.readouterr().err
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["job"] is None and data["bucket"] is None  # read, and not there yet
    assert main(["config", "show", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)["settings"]}
    assert rows["cloud.emulator"]["value"] == env["GOVCTL_EMULATOR_HOST"]
    assert rows["cloud.storage_emulator"]["source"] == "file"
