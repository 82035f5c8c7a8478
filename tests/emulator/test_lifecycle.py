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
from tests.support.cloud import enable_apis

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
    enable_apis(PROJECT, ["run.googleapis.com"])  # a new project has it off, as Google's
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
    assert {"GOVCTL_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "CLOUDSDK_PROXY_PORT"} <= set(env)
    assert env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")

    assert main(["emulator", "status", "--json", *base]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True
    assert f"127.0.0.1:{status['port']}" == env["GOVCTL_EMULATOR_HOST"]
    assert f"http://127.0.0.1:{status['storage_port']}" == env["STORAGE_EMULATOR_HOST"]
    assert status["grpc_answers"] is True and status["storage_answers"] is True
    assert status["state_dir"] == str(state_dir)
    assert str(status["rest_port"]) == env["CLOUDSDK_PROXY_PORT"]
    record = process.read_record(state_dir)
    assert record is not None and status["pid"] == record.pid

    assert main(["emulator", "env", *base]) == 0
    assert capsys.readouterr().out == started.stdout
    assert main(["emulator", "env", "--gcloud", *base]) == 0
    gcloud_env = exports(capsys.readouterr().out)
    assert set(gcloud_env) == {k for k in env if k.startswith("CLOUDSDK_")}
    assert gcloud_env["CLOUDSDK_PROXY_PORT"] == str(status["rest_port"])
    assert gcloud_env["CLOUDSDK_CONFIG"] == str(state_dir / "gcloud")

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
    assert not (state_dir / "children.json").exists()  # nothing left to reap
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_restart_on_the_same_fixed_ports_right_after_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each run serves a request, so its stop leaves TIME_WAIT connections on both ports.
    port, storage_port = _free_port(), _free_port()
    for _ in range(3):
        with Emulator(port=port, storage_port=storage_port, state_dir=tmp_path) as emu:
            assert (emu.port, emu.storage.port if emu.storage else 0) == (port, storage_port)
            assert process.storage_answers(emu.env()["STORAGE_EMULATOR_HOST"])
            assert process.grpc_answers(emu.grpc_address)


def test_cli_stop_then_start_on_fixed_ports_succeeds_every_time(state_dir: Path) -> None:
    ports = ["--port", str(_free_port()), "--storage-port", str(_free_port())]
    ports += ["--rest-port", str(_free_port())]
    base = ["--state-dir", str(state_dir)]
    for _ in range(3):
        started = govctl("emulator", "start", "--detach", *ports, *base)
        assert started.returncode == 0, started.stderr
        env = exports(started.stdout)
        assert process.storage_answers(env["STORAGE_EMULATOR_HOST"])
        stopped = govctl("emulator", "stop", *base)
        assert stopped.returncode == 0, stopped.stderr


# The task records its pid and its child's, then both sleep: a crash must not leave them.
SLEEPER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(os.environ["PIDS"] + ".tmp", "w").write(f"{os.getpid()} {child.pid}")
os.replace(os.environ["PIDS"] + ".tmp", os.environ["PIDS"])
time.sleep(120)
"""


def _start_sleeper(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], pids: Path) -> str:
    from google.cloud import run_v2

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    container = run_v2.Container(
        image="localhost/sleeper:1", env=[run_v2.EnvVar(name="PIDS", value=str(pids))]
    )
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(containers=[container], max_retries=0)
        )
    )
    enable_apis(PROJECT, ["run.googleapis.com"])
    jobs = clients.jobs()
    jobs.create_job(parent=JOB_PARENT, job=job, job_id="sleeper").result(timeout=10)
    execution = jobs.run_job(name=f"{JOB_PARENT}/jobs/sleeper").metadata.name
    deadline = time.monotonic() + 15
    while not pids.exists():
        assert time.monotonic() < deadline, "the task did not start"
        time.sleep(0.05)
    return str(execution)


def _crash(state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple:
    """Start detached on fixed ports, run a sleeping job, kill -9 the emulator."""
    ports = ["--port", str(_free_port()), "--storage-port", str(_free_port())]
    ports += ["--rest-port", str(_free_port())]
    base = ["--state-dir", str(state_dir)]
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    image_map = ["--map-image", f"localhost/sleeper*={sys.executable} {script}"]
    started = govctl("emulator", "start", "--detach", *image_map, *ports, *base)
    assert started.returncode == 0, started.stderr
    record = process.read_record(state_dir)
    assert record is not None
    pids = tmp_path / "pids"
    execution = _start_sleeper(monkeypatch, exports(started.stdout), pids)
    task_pid, grandchild_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 5  # the state reaches disk within half a second
    state = state_dir / "state.json"
    while not state.exists() or '"Attempt 0 is running."' not in state.read_text():
        assert time.monotonic() < deadline, "the running task never reached state.json"
        time.sleep(0.05)
    os.kill(record.pid, signal.SIGKILL)
    assert gone(record.pid)
    if sys.platform.startswith("linux"):
        # PR_SET_PDEATHSIG: the kernel kills its direct children with it, before any reaping;
        # the task's own child is left for the reaper.
        assert gone(record.storage_pid) and gone(task_pid)
        assert process.pid_alive(grandchild_pid)
    return ports, base, record, execution, task_pid, grandchild_pid


def test_after_a_crash_start_reaps_orphans_and_reuses_the_ports(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from google.cloud import run_v2

    ports, base, record, execution, task_pid, grandchild_pid = _crash(
        state_dir, monkeypatch, tmp_path
    )
    restarted = govctl("emulator", "start", "--detach", *ports, *base)
    assert restarted.returncode == 0, restarted.stderr
    for pid in (record.storage_pid, task_pid, grandchild_pid):
        assert gone(pid), f"orphan {pid} survived"
    env = exports(restarted.stdout)
    assert env["GOVCTL_EMULATOR_HOST"] == f"127.0.0.1:{ports[1]}"
    assert env["STORAGE_EMULATOR_HOST"] == f"http://127.0.0.1:{ports[3]}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The operator's next command is a new process: this one's clients still hold channels to
    # the server that crashed on these ports (the first call on one can fail "Socket closed").
    clients.forget()
    interrupted = clients.executions().get_execution(name=execution)
    completed = next(c for c in interrupted.conditions if c.type_ == "Completed")
    assert completed.execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
    assert interrupted.cancelled_count == 1 and interrupted.failed_count == 0
    (task,) = clients.tasks().list_tasks(parent=execution)
    assert task.last_attempt_result.status.message == "The task was cancelled."
    assert govctl("emulator", "stop", *base).returncode == 0


def test_stop_after_a_crash_reaps_what_it_left(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, base, record, _, task_pid, grandchild_pid = _crash(state_dir, monkeypatch, tmp_path)
    stopped = govctl("emulator", "stop", *base)
    assert stopped.returncode == 0, stopped.stderr
    assert "no emulator is running" in stopped.stderr
    assert f"{task_pid} (task 0 of " in stopped.stderr
    for pid in (record.storage_pid, task_pid, grandchild_pid):
        assert gone(pid), f"orphan {pid} survived"
    assert not (state_dir / "children.json").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_a_non_loopback_host_is_refused(
    host: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["emulator", "start", "--host", host, "--port", "0", "--storage-port", "0"]
    assert main([*argv, "--state-dir", str(state_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"refusing --host {host!r}: expected a loopback address" in err
    assert "--allow-remote" in err
    assert process.read_record(state_dir) is None
    with pytest.raises(GovctlError, match="--allow-remote"):
        Emulator(host=host)
    Emulator(host=host, allow_remote=True, storage=False)  # the explicit opt-in is accepted


def test_a_corrupt_state_file_names_the_file_and_the_fix(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir.mkdir()
    (state_dir / "state.json").write_text('{"run": {"jobs": [')
    argv = ["emulator", "start", "--port", "0", "--storage-port", "0"]
    assert main([*argv, "--state-dir", str(state_dir)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    path = state_dir / "state.json"
    assert f"cannot read the emulator state {path} (JSONDecodeError" in err
    assert f"mv {path} {path}.bad" in err
    assert "internal error" not in err
    # A section a service cannot load is the same error, naming the service.
    path.write_text('{"run": {"jobs": [{"template": 5}]}}')
    with pytest.raises(GovctlError, match=r"state\.json \(bad 'run' section"):
        Emulator(state_dir=state_dir, storage=False).start()
