"""`govctl init` on the emulator: the first `govctl run` in a fresh directory works, because
the feed is the embedded sample (made as local git repositories) instead of the default feed
on the internet. End to end through the CLI, as an operator types it."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl import config
from govctl.cli.main import main
from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import logs as logs_service
from govctl.services import watch

PROJECT = "fresh-project"


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory and a started emulator, as after
    `eval "$(govctl emulator start --detach)"`: nothing else."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for key in [k.env for k in config.KEYS.values()] + ["GOVCTL_CONFIG"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setattr(watch, "POLL_S", 0.2)
    monkeypatch.setattr(watch, "LOG_POLL_S", 0.5)
    monkeypatch.setattr(logs_service, "FOLLOW_CHECK_S", 0.3)
    with Emulator(state_dir=tmp_path / "state", image_map=default_image_map()) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield work


def test_init_setup_deploy_run_in_a_fresh_directory_on_the_emulator(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--project", PROJECT]) == 0
    err = capsys.readouterr().err
    assert "the cloud is govctl emulator: [job] feed is the embedded sample" in err
    settings = tomllib.loads((fresh / "govctl.toml").read_text())
    feed = settings["job"]["feed"]
    assert feed == (fresh / ".govctl-sample" / "repos.json").as_uri()
    assert settings["job"]["args"] == ["--allow-local"]
    assert any(e.get("url", "").startswith("file://") for e in json.loads(
        (fresh / ".govctl-sample" / "repos.json").read_text()))  # fmt: skip

    assert main(["setup", "-y"]) == 0
    assert main(["deploy", "--allow-dirty", "-y"]) == 0
    capsys.readouterr()
    code = main(["run", "--limit", "3"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "3 processed" in out
    blobs = [b.name for b in clients.storage_client(PROJECT).list_blobs("govreposcrape-summaries")]
    assert len([b for b in blobs if b.endswith(".md")]) == 3


def test_no_sample_feed_keeps_the_default_and_off_the_emulator_none_is_made(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--project", PROJECT, "--no-sample-feed"]) == 0
    assert "feed" not in tomllib.loads((fresh / "govctl.toml").read_text())["job"]
    monkeypatch.delenv("GOVCTL_EMULATOR_HOST")
    assert main(["init", "--project", PROJECT, "--force"]) == 0
    assert "embedded sample" not in capsys.readouterr().err
    assert not (fresh / ".govctl-sample").exists()
