"""Each Google client is made once per process and shared (govctl.gcp.clients)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import run_v2

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import watch
from tests.emulator.run_support import FAST_POLL
from tests.support.cloud import enable_apis

PROJECT = "demo-project"
REGION = "europe-west2"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/test/sleepy:1"
TASK_S = 1.5
POLL_S = 0.1


@pytest.fixture
def sleepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator whose test image is a task that sleeps TASK_S seconds; a job "sleepy"."""
    command = f"{sys.executable} -c 'import time; time.sleep({TASK_S})'"
    with Emulator(state_dir=tmp_path / "state", image_map={"*/test/sleepy*": command}) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
        monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
        monkeypatch.setenv("GOVCTL_REGION", REGION)
        monkeypatch.setenv("GOVCTL_JOB_NAME", "sleepy")
        enable_apis(PROJECT)  # what `govctl setup` enables
        template = run_v2.TaskTemplate(containers=[run_v2.Container(image=IMAGE)], max_retries=0)
        job = run_v2.Job(template=run_v2.ExecutionTemplate(task_count=1, template=template))
        parent = f"projects/{PROJECT}/locations/{REGION}"
        clients.jobs().create_job(parent=parent, job=job, job_id="sleepy").result(polling=FAST_POLL)
        yield emu


def test_a_watched_run_makes_each_client_once(
    sleepy: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`govctl run` polls the execution and its tasks every POLL_S for TASK_S seconds (about
    15 polls here): each poll used to build its clients anew (a channel each; on Google, a
    credential lookup and a token refresh)."""
    monkeypatch.setattr(watch, "POLL_S", POLL_S)
    clients.forget()
    clients.constructions.clear()

    assert main(["run"]) == 0, capsys.readouterr().err

    made = dict(clients.constructions)
    assert made.get("ExecutionsClient") == 1 and made.get("TasksClient") == 1, made
    assert all(count == 1 for count in made.values()), made


def test_threads_share_one_client(sleepy: Emulator) -> None:
    clients.forget()
    clients.constructions.clear()
    start = threading.Barrier(8)
    got: list[object] = []

    def take() -> None:
        start.wait()
        got.append(clients.scheduler())

    workers = [threading.Thread(target=take) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len({id(client) for client in got}) == 1
    assert clients.constructions["CloudSchedulerClient"] == 1


def test_another_target_gets_its_own_clients(
    sleepy: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = clients.jobs()
    assert clients.jobs() is first
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    assert clients.jobs() is not first
