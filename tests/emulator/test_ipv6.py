"""`govctl emulator start --host ::1` works end to end (issue 14, item 7): both servers listen
on the IPv6 loopback, the printed variables bracket the address, and clients, `status` and a
job's tasks reach it."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2, storage

from govctl.emulator import process
from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL, PARENT, wait_execution
from tests.support.cloud import enable_apis


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)"
)


def govctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govctl", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state"
    yield directory
    record = process.read_record(directory)  # never leave an emulator behind
    if record is not None:
        process.stop(record)


def test_start_on_ipv6_loopback_from_the_command_line(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = govctl("emulator", "start", "--detach", "--host", "::1", "--port", "0",
                     "--storage-port", "0", "--state-dir", str(state_dir))  # fmt: skip
    assert started.returncode == 0, started.stderr
    env = {}
    for line in started.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0]  # quoted: brackets are special to a shell
    assert env["GOVCTL_EMULATOR_HOST"].startswith("[::1]:")
    assert env["STORAGE_EMULATOR_HOST"].startswith("http://[::1]:")

    status = govctl("emulator", "status", "--json", "--state-dir", str(state_dir))
    assert status.returncode == 0, status.stdout + status.stderr
    data = json.loads(status.stdout)
    assert data["host"] == "::1" and data["grpc_answers"] and data["storage_answers"]
    again = govctl("emulator", "env", "--state-dir", str(state_dir))
    assert again.stdout == started.stdout

    # The official clients, pointed by those variables, reach both servers.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    gcs = storage.Client(project="p", credentials=AnonymousCredentials())
    gcs.create_bucket("ipv6-bucket").blob("a.txt").upload_from_string("over ::1")
    assert gcs.bucket("ipv6-bucket").blob("a.txt").download_as_text() == "over ::1"
    enable_apis(PARENT.split("/")[1], ["run.googleapis.com"])  # off in a new project
    assert list(clients.jobs().list_jobs(parent=PARENT)) == []

    assert govctl("emulator", "stop", "--state-dir", str(state_dir)).returncode == 0


def test_tasks_reach_the_ipv6_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    feed = tmp_path / "repos.json"
    feed.write_text("[]")
    with Emulator(host="::1", state_dir=tmp_path / "state", image_map=default_image_map()) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        clients.storage_client("p").create_bucket("digests")
        container = run_v2.Container(
            image="x.example/govreposcrape/ingestion",
            args=["--sink", "gs://digests", "--allow-shrink"],
            env=[run_v2.EnvVar(name="REPOS_FEED_URL", value=str(feed))],
        )
        template = run_v2.TaskTemplate(containers=[container], max_retries=0)
        job = run_v2.Job(template=run_v2.ExecutionTemplate(template=template))
        jobs = clients.jobs()
        jobs.create_job(parent=PARENT, job_id="v6", job=job).result(polling=FAST_POLL)
        op = jobs.run_job(name=f"{PARENT}/jobs/v6")
        execution = wait_execution(clients.executions(), op.metadata.name, 30)
        assert execution.succeeded_count == 1
        names = [b.name for b in clients.storage_client("p").list_blobs("digests")]
        assert any(n.startswith("_runs/") for n in names), names
