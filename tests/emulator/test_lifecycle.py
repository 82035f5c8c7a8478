"""Starting and stopping the loopback cloud, as a user does and as tests do in-process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.cli.main import main
from govctl.emulator import Emulator, process
from govctl.errors import GovctlError
from govctl.gcp import clients

PROJECT = "lifecycle-test"
JOB_PARENT = f"projects/{PROJECT}/locations/europe-west2"


def govctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govctl", *args], capture_output=True, text=True, timeout=60
    )


def exports(stdout: str) -> dict[str, str]:
    env = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def gone(pid: int | None) -> bool:
    return pid is not None and process.wait_gone(pid, 5)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state"
    yield directory
    record = process.read_record(directory)  # never leave an emulator behind
    if record is not None:
        process.stop(record)


def _write_bucket(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bucket = clients.storage_client(PROJECT).create_bucket("lifecycle-bucket")
    bucket.blob("org/repo.md").upload_from_string("# digest\n")


def _read_bucket(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    blob = clients.storage_client(PROJECT).bucket("lifecycle-bucket").blob("org/repo.md")
    return blob.download_as_text()


def _create_job(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from google.cloud import run_v2

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(
                containers=[run_v2.Container(image="localhost/govctl-ingestion:test")]
            )
        )
    )
    clients.jobs().create_job(parent=JOB_PARENT, job=job, job_id="ingest").result(timeout=10)


def _job_names(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> list[str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return [job.name for job in clients.jobs().list_jobs(parent=JOB_PARENT)]


def test_detached_start_status_env_stop_and_restart(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--state-dir", str(state_dir)]
    t0 = time.monotonic()
    started = govctl("emulator", "start", "--detach", "--port", "0", "--storage-port", "0", *base)
    elapsed = time.monotonic() - t0
    assert started.returncode == 0, started.stderr
    env = exports(started.stdout)
    assert set(env) == {"GOVCTL_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
    assert env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")

    assert main(["emulator", "status", "--json", *base]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True
    assert f"127.0.0.1:{status['port']}" == env["GOVCTL_EMULATOR_HOST"]
    assert f"http://127.0.0.1:{status['storage_port']}" == env["STORAGE_EMULATOR_HOST"]
    assert status["grpc_answers"] is True and status["storage_answers"] is True
    assert status["state_dir"] == str(state_dir)
    record = process.read_record(state_dir)
    assert record is not None and status["pid"] == record.pid

    assert main(["emulator", "env", *base]) == 0
    assert capsys.readouterr().out == started.stdout

    # A second start on the same state directory is refused, pointing at the running one.
    assert main(["emulator", "start", "--detach", "--port", "0", *base]) == 1
    assert f"already running on {state_dir} (pid {record.pid})" in capsys.readouterr().err

    _write_bucket(monkeypatch, env)
    _create_job(monkeypatch, env)

    assert main(["emulator", "stop", *base]) == 0
    assert gone(record.pid) and gone(record.storage_pid)
    assert not (state_dir / process.RECORD_FILE).exists()
    assert main(["emulator", "status", *base]) == 1
    assert "not running" in capsys.readouterr().err

    restarted = govctl("emulator", "start", "--detach", "--port", "0", "--storage-port", "0", *base)
    assert restarted.returncode == 0, restarted.stderr
    env = exports(restarted.stdout)
    assert _read_bucket(monkeypatch, env) == "# digest\n"
    assert _job_names(monkeypatch, env) == [f"{JOB_PARENT}/jobs/ingest"]
    assert main(["emulator", "stop", *base]) == 0
    with capsys.disabled():
        print(f"\n`govctl emulator start --detach` returned ready in {elapsed:.2f} s")


def test_foreground_start_stops_cleanly_on_sigterm(state_dir: Path) -> None:
    argv = [sys.executable, "-m", "govctl", "emulator", "start", "--state-dir", str(state_dir)]
    proc = subprocess.Popen(
        [*argv, "--port", "0", "--storage-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert set(exports("".join(lines))) == {"GOVCTL_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
        record = process.read_record(state_dir)
        assert record is not None and record.pid == proc.pid
        assert process.grpc_answers(exports("".join(lines))["GOVCTL_EMULATOR_HOST"])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "emulator stopped" in err
    assert gone(record.storage_pid)
    assert not (state_dir / process.RECORD_FILE).exists()
    assert (state_dir / "state.json").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_foreground_waits_for_each_stop_signal(sig: signal.Signals) -> None:
    # The same wait the foreground emulator does, without the emulator's import cost.
    code = (
        "from govctl.emulator.process import StopSignals\n"
        "with StopSignals() as signals:\n"
        "    print('waiting', flush=True)\n"
        "    signals.wait()\n"
        "print('returned')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "waiting\n"
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=5)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, out) == (0, "returned\n")
    assert time.monotonic() - t0 < 2  # woken by the signal, not by a polling timeout


def test_in_process_emulator_serves_storage_and_keeps_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    t0 = time.monotonic()
    with Emulator(state_dir=state) as emu:
        ready = time.monotonic() - t0
        env = emu.env()
        assert set(env) == {"GOVCTL_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
        _write_bucket(monkeypatch, env)
        storage_pid = emu.storage.pid if emu.storage else None
    assert gone(storage_pid)
    assert (state / "storage" / "lifecycle-bucket").is_dir()  # filesystem backend
    t0 = time.monotonic()
    with Emulator(state_dir=state) as emu:
        restart = time.monotonic() - t0
        assert _read_bucket(monkeypatch, emu.env()) == "# digest\n"
    with capsys.disabled():
        print(
            "\nEmulator.start() (gRPC services + fake-gcs-server) ready in "
            f"{ready:.2f} s (first, incl. imports), {restart:.2f} s (restart on its state)"
        )


def test_two_emulators_never_share_a_state_dir(tmp_path: Path) -> None:
    with Emulator(state_dir=tmp_path, storage=False) as first:
        first.cloud.save()
        saved = (tmp_path / "state.json").read_bytes()
        second = Emulator(state_dir=tmp_path, storage=False)
        with pytest.raises(GovctlError, match="another emulator is using the state directory"):
            second.start()
        assert (tmp_path / "state.json").read_bytes() == saved  # the failed start saved nothing


def test_taken_ports_are_clear_errors(tmp_path: Path) -> None:
    taken_port = r"cannot listen on 127\.0\.0\.1:\d+.*--port 0"
    with Emulator(storage=False) as first, pytest.raises(GovctlError, match=taken_port):
        Emulator(port=first.port, storage=False).start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        emu = Emulator(storage_port=port, state_dir=tmp_path)
        with pytest.raises(GovctlError, match="--storage-port 0"):
            emu.start()
    # A failed start leaves nothing behind: the state dir is free again.
    with Emulator(state_dir=tmp_path, storage=False):
        pass


def test_stop_kills_an_emulator_that_ignores_sigterm(tmp_path: Path) -> None:
    # A stand-in process that ignores SIGTERM, recorded as if it were an emulator.
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
        record = _record(stubborn.pid, tmp_path)
        process.write_record(tmp_path, record)
        assert process.stop(record, timeout=0.3) is False
        assert stubborn.wait(5) == -signal.SIGKILL
        assert not (tmp_path / process.RECORD_FILE).exists()
    finally:
        stubborn.kill()
        stubborn.wait()


def _record(pid: int, state_dir: Path) -> process.Record:
    return process.Record(
        pid=pid,
        host="127.0.0.1",
        port=1,
        storage_port=2,
        storage_pid=None,
        state_dir=str(state_dir),
        started_at=process.now_rfc3339(),
        version="test",
    )


def test_record_of_a_dead_process_means_not_running(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    process.write_record(tmp_path, _record(dead.pid, tmp_path))
    fd = process.lock_state_dir(tmp_path)
    try:
        assert process.read_record(tmp_path) is None
    finally:
        os.close(fd)


def test_record_whose_pid_was_reused_means_not_running(tmp_path: Path) -> None:
    # A live pid (ours) but nobody holds the directory's lock: the emulator is gone.
    process.write_record(tmp_path, _record(os.getpid(), tmp_path))
    assert process.read_record(tmp_path) is None
    fd = process.lock_state_dir(tmp_path)
    try:
        record = process.read_record(tmp_path)
        assert record is not None and record.pid == os.getpid()
    finally:
        os.close(fd)
    assert process.read_record(tmp_path) is None
