"""Shell completion of the project's names, end to end: `govctl` run as the shell runs it on TAB
(typer's protocol: ``_GOVCTL_COMPLETE=complete_bash COMP_WORDS=… COMP_CWORD=…``) against the
loopback cloud; quick and silent when the cloud does not answer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import run_v2, secretmanager_v1

from govctl.cli import complete
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL, job_spec

PROJECT, REGION, JOB = "demo-project", "europe-west2", "ingest"
PARENT = f"projects/{PROJECT}/locations/{REGION}"


@pytest.fixture
def project(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """A job with three executions (their names, newest first) and two secrets."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    for key, value in {"GOVCTL_PROJECT": PROJECT, "GOVCTL_REGION": REGION,
                       "GOVCTL_JOB_NAME": JOB}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GOVCTL_CONFIG", raising=False)
    # Generous here: a shared test machine can take seconds to import the client libraries.
    monkeypatch.setenv(complete.DEADLINE_ENV, "30")
    jobs = clients.jobs()
    jobs.create_job(parent=PARENT, job_id=JOB, job=job_spec()).result(polling=FAST_POLL)
    names = []
    for _ in range(3):
        op = jobs.run_job(name=f"{PARENT}/jobs/{JOB}")
        names.append(run_v2.ExecutionsClient.parse_execution_path(op.metadata.name)["execution"])
        time.sleep(0.01)  # distinct creation times, so "newest first" is well defined
    sm = clients.secret_manager()
    for secret_id in ("github-token", "npm-token"):
        sm.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id,
                         secret=secretmanager_v1.Secret(replication={"automatic": {}}))  # fmt: skip
    yield names[::-1]


def tab(line: str, env: dict[str, str] | None = None) -> tuple[list[str], str, float]:
    """What the shell offers after ``line`` (the last word is the one being completed, empty
    after a trailing space), what reached stderr, and how long it took."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "govctl"],
        env={**os.environ, **(env or {}), "_GOVCTL_COMPLETE": "complete_bash",
             "COMP_WORDS": line, "COMP_CWORD": str(cword)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split(), proc.stderr, elapsed


def test_execution_names_complete_newest_first(project: list[str]) -> None:
    assert tab("govctl executions show ")[:2] == (project, "")
    assert tab("govctl executions cancel ")[0] == project
    newest = project[0]
    assert tab(f"govctl executions show {newest[:-2]}")[0] == [newest]
    assert tab("govctl logs --execution ")[0] == project
    assert tab(f"govctl logs -e {newest[:-1]}")[0] == [newest]


def test_flags_typed_before_tab_choose_the_project(project: list[str]) -> None:
    assert tab("govctl executions show --project other-project ")[0] == []
    assert tab(f"govctl executions show --project {PROJECT} ")[0] == project


def test_secret_names_and_ids_complete(project: list[str]) -> None:
    env = {"GOVCTL_JOB_SECRETS": "GITHUB_TOKEN=github-token NPM_TOKEN=npm-token"}
    assert tab("govctl secrets set ", env)[:2] == (["GITHUB_TOKEN", "NPM_TOKEN"], "")
    assert tab("govctl secrets set G", env)[0] == ["GITHUB_TOKEN"]
    assert tab("govctl secrets set GITHUB_TOKEN --secret ")[0] == ["github-token", "npm-token"]
    assert tab("govctl secrets set GITHUB_TOKEN --secret np")[0] == ["npm-token"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("where", ["closed port", "silent port", "bad settings"])
def test_no_answer_completes_nothing_quickly_and_quietly(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv(complete.DEADLINE_ENV, raising=False)  # the default deadline
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = {"closed port": _closed_port(), "silent port": silent.getsockname()[1],
                "bad settings": _closed_port()}[where]  # fmt: skip
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", f"127.0.0.1:{port}")
        if where == "bad settings":
            (tmp_path / "govctl.toml").write_text("[jobs]\n")
        for line in ("govctl executions show ", "govctl logs --execution ",
                     "govctl secrets set X --secret "):  # fmt: skip
            offered, err, elapsed = tab(line)
            assert (offered, err) == ([], ""), line
            # The deadline, plus a fresh interpreter's start-up on a shared machine.
            assert elapsed < complete.DEADLINE_S + 3.0, (line, elapsed)
            if where == "silent port":  # it did ask, and gave up at the deadline
                assert elapsed >= complete.DEADLINE_S, (line, elapsed)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_installed_bash_script_offers_the_names(project: list[str]) -> None:
    """The script `govctl --show-completion bash` prints, sourced in a real bash, as TAB calls
    it after `govctl executions show `."""
    script = (
        'source <(govctl --show-completion bash); COMP_WORDS=(govctl executions show ""); '
        'COMP_CWORD=3; _govctl_completion govctl; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "PATH": path, "SHELL": "/bin/bash"},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert proc.stdout.split() == project
