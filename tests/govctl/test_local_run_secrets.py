"""`govctl local run` gives the job its ``[job] secrets`` (issue 14, item 11): read from Secret
Manager (the emulator's) when the job starts, handed over in the child's environment, never on
a command line or in any output. The container engine is a stand-in ``podman`` on PATH that
records its command line and environment (not a Google client)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import secrets
from tests.support.cloud import enable_apis

VALUE = "ghp_S3CR3T-value-of-the-test"
PROJECT = "demo-project"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.chdir(tmp_path)
    for var in [k for k in os.environ if k.startswith("GOVCTL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    with Emulator(state_dir=tmp_path / "state") as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        enable_apis(PROJECT)  # what `govctl setup` enables, Secret Manager's API with it
        monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
        monkeypatch.setenv("GOVCTL_JOB_SECRETS", "GITHUB_TOKEN=github-token")
        yield emu


def _store() -> None:
    secrets.create(PROJECT, "github-token")
    secrets.add_version(PROJECT, "github-token", VALUE.encode())


@pytest.fixture
def podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``podman`` that writes what it was given to ``podman.json`` and exits 0."""
    record = tmp_path / "podman.json"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "podman"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


CONTAINER = ["local", "run", "--container", "--engine", "podman", "--image", "ingestion:test"]


def test_the_container_gets_the_secret_in_podmans_environment_only(
    cloud: Emulator, podman: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _store()
    assert main(CONTAINER) == 0
    seen = json.loads(podman.read_text())
    argv = seen["argv"]
    assert argv[argv.index("GITHUB_TOKEN") - 1] == "-e"  # passed by name ...
    assert seen["env"]["GITHUB_TOKEN"] == VALUE  # ... its value in podman's environment
    assert not any(VALUE in arg for arg in argv)
    out, err = capfd.readouterr()
    assert VALUE not in out + err


def test_a_dry_run_names_the_secret_and_never_reads_it(
    cloud: Emulator, podman: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # No such secret yet: a dry run does not read it, so it cannot fail on it either.
    assert main([*CONTAINER, "--dry-run"]) == 0
    out, _ = capfd.readouterr()
    assert "GITHUB_TOKEN=<Secret Manager: github-token (latest)>" in out.splitlines()
    assert not podman.exists()


def test_a_missing_secret_stops_before_the_job_with_the_fix(
    cloud: Emulator, podman: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(CONTAINER) == 1
    _, err = capfd.readouterr()
    assert "GITHUB_TOKEN" in err and "govctl secrets set GITHUB_TOKEN" in err, err
    assert not podman.exists()  # the job never started without its secret


def test_a_disabled_version_stops_before_the_job(
    cloud: Emulator, podman: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _store()
    monkeypatch.setenv("GOVCTL_JOB_SECRETS", "GITHUB_TOKEN=github-token:1")
    from govctl.gcp import clients

    clients.secret_manager().disable_secret_version(
        name=f"projects/{PROJECT}/secrets/github-token/versions/1"
    )
    assert main(CONTAINER) == 1
    _, err = capfd.readouterr()
    assert "GITHUB_TOKEN" in err and "DISABLED" in err, err
    assert not podman.exists()


def test_without_a_container_the_job_gets_the_secret_too(
    cloud: Emulator, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _store()
    feed = tmp_path / "repos.json"
    feed.write_text("[]")
    monkeypatch.setenv("GOVCTL_JOB_FEED", f"file://{feed}")
    argv = ["local", "run", "--no-container", "--", "--allow-shrink", "--dry-run"]
    assert main(argv) == 0
    out, err = capfd.readouterr()
    starting = next(json.loads(line) for line in out.splitlines() if "ingestion starting" in line)
    assert starting["github_token"] == "set"  # the job saw GITHUB_TOKEN
    assert VALUE not in out + err
