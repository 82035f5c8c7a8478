"""Every command ends: against an endpoint that is down, in about a second with one line that
names it and the fix; at Ctrl-C, within a second with exit 130.

The closed-port cases run each command group as an operator types it, in-process, with
``GOVCTL_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST`` on a port nothing listens on. Their
bound (10 s) is generous on a shared machine: the figures themselves are printed by
``python -m tests.perf.bench_closed_port``. The Ctrl-C cases run `govctl` as a process whose
endpoints are a black hole (a listener that accepts and never answers) and send it SIGINT once
it has connected.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from google.cloud import run_v2

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from tests.support.black_hole import BlackHole, closed_port

PROJECT = "deadline-project"
IMAGE = "us-central1-docker.pkg.dev/deadline-project/govreposcrape/ingestion@sha256:" + "ab" * 32
BOUND_S = 10.0  # generous: the target is under 3 s, measured by tests/perf/bench_closed_port

# (argv, exit status): every command group that calls the cloud. `cost` is the one that
# answers offline, from its bundled prices, and says why in a warning.
CALLS: list[tuple[list[str], int]] = [
    (["setup", "--dry-run"], 1),
    (["deploy", "--dry-run", "--image", IMAGE], 1),
    (["run", "--limit", "1"], 1),
    (["executions", "list"], 1),
    (["executions", "show", "--latest"], 1),
    (["executions", "cancel", "govreposcrape-ingestion-abcde", "-y"], 1),
    (["logs", "-n", "5"], 1),
    (["logs", "--follow"], 1),
    (["schedule", "show"], 1),
    (["schedule", "pause"], 1),
    (["schedule", "set", "0 3 * * *", "-y"], 1),
    (["schedule", "trigger"], 1),
    (["status"], 1),
    (["doctor"], 1),
    (["alerts", "show"], 1),
    (["alerts", "set", "--email", "ops@example.org", "--dry-run"], 1),
    (["secrets", "list"], 1),
    (["secrets", "set", "GITHUB_TOKEN"], 1),
    (["index", "status"], 1),
    (["index", "create"], 1),
    (["index", "sync"], 1),
    (["index", "search", "tax"], 1),
    (["cost"], 0),
]


class _Stdin:
    """A piped stdin (not a terminal), as in `gh auth token | govctl secrets set NAME`."""

    def __init__(self, text: str) -> None:
        self.buffer = io.BytesIO(text.encode())

    def isatty(self) -> bool:
        return False


@pytest.fixture
def down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Settings whose emulator is a closed port; returns ``127.0.0.1:PORT``."""
    address = f"127.0.0.1:{closed_port()}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{address}")
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_JOB_SECRETS", "GITHUB_TOKEN=github-token")
    monkeypatch.setattr(sys, "stdin", _Stdin("a-value\n"))
    return address


@pytest.mark.parametrize(("argv", "status"), CALLS, ids=[" ".join(c[0]) for c in CALLS])
def test_a_down_emulator_is_said_at_once(
    down: str, argv: list[str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = main(argv)
    took = time.monotonic() - started
    out, err = capsys.readouterr()

    assert code == status, err
    assert took < BOUND_S, f"govctl {' '.join(argv)} took {took:.1f} s"
    assert "Traceback" not in err
    if argv == ["doctor"]:  # a report: the one failing check names it, the rest are skipped
        said = [line for line in out.splitlines() if line.lstrip().startswith("FAIL")]
        fix = out.splitlines()[out.splitlines().index(said[0]) + 1]
    elif status == 1:  # one line, not one per part of the command
        said = [line for line in err.splitlines() if line.startswith("error:")]
        fix = said[0]
    else:  # cost: offline prices, and a warning that says why
        said = [line for line in err.splitlines() if down in line]
        fix = said[0]
    assert len(said) == 1, out + err
    # Whichever read failed first: the gRPC services' or the storage's (both are down).
    grpc_down = f"the emulator at {down} is not running" in said[0]
    storage_down = f"the emulator's Cloud Storage at http://{down} is not running" in said[0]
    assert grpc_down or storage_down, said[0]
    setting = "GOVCTL_EMULATOR_HOST" if grpc_down else "STORAGE_EMULATOR_HOST"
    assert f"`govctl emulator start`, or unset {setting}" in fix


@pytest.mark.parametrize("argv", [["config", "show"], ["init"]])
def test_commands_that_need_no_cloud_do_not_wait_for_it(
    down: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert main(argv) == 0, capsys.readouterr().err
    assert time.monotonic() - started < BOUND_S


def _environ(tmp_path: Path, address: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "no-gcloud"),
        "GOVCTL_EMULATOR_HOST": address,
        "STORAGE_EMULATOR_HOST": f"http://{address}",
        "GOVCTL_PROJECT": PROJECT,
    }


def interrupt(argv: list[str], tmp_path: Path, *, connections: int = 1) -> tuple[int, float, str]:
    """Run `govctl ARGV` against a black hole, send SIGINT once it has ``connections`` open;
    return its exit status, the seconds from SIGINT to its end, and its stderr."""
    with BlackHole() as hole:
        proc = subprocess.Popen(
            [sys.executable, "-m", "govctl", *argv],
            env=_environ(tmp_path, hole.address),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert hole.wait_for(connections, timeout=30), "govctl never reached the endpoint"
            assert proc.poll() is None, "govctl ended before it was interrupted"
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            return proc.returncode, time.monotonic() - sent, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize(
    ("argv", "connections"),
    [
        (["status"], 2),  # a thread pool: gRPC and storage reads in its workers
        (["doctor"], 1),
        (["schedule", "show"], 1),  # one blocking gRPC call in the main thread
        (["logs", "-n", "5"], 1),
    ],
    ids=["status", "doctor", "schedule show", "logs"],
)
def test_ctrl_c_ends_a_blocked_command_at_once(
    tmp_path: Path, argv: list[str], connections: int
) -> None:
    code, took, err = interrupt(argv, tmp_path, connections=connections)
    assert code == 130, err
    assert took < 5.0, f"govctl {' '.join(argv)} took {took:.1f} s to stop"  # ~0.3 s measured
    assert "Traceback" not in err


def test_a_command_reading_in_parallel_ends_with_its_first_unreachable_read(
    tmp_path: Path,
) -> None:
    """`status` reads six things at once. Its storage endpoint refuses; its gRPC endpoint takes
    the connection and never answers (10 s until gRPC gives up connecting): the command ends
    with the first read that says the emulator is down, and the process does not wait for
    the others."""
    with BlackHole() as hole:
        environ = _environ(tmp_path, hole.address)
        environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{closed_port()}"
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "govctl", "status"], env=environ,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
        took = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert "the emulator's Cloud Storage at http://127.0.0.1:" in proc.stderr
    # Waiting for every read (as `with ThreadPoolExecutor()` does) would take gRPC's 10 s.
    assert took < 8.0, f"{took:.1f} s"


# --- beneath the commands: the channel's and the storage session's deadlines ------------------


def _scheduler_on(channel: object) -> object:
    from google.cloud import scheduler_v1
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
        CloudSchedulerGrpcTransport,
    )

    return scheduler_v1.CloudSchedulerClient(transport=CloudSchedulerGrpcTransport(channel=channel))


JOB_NAME = "projects/p/locations/europe-west2/jobs/daily"


def test_a_google_endpoint_that_refuses_is_named_with_the_network_fix() -> None:
    """The channel a Google client gets (TLS, the transport's own maker) with govctl's
    interceptor: a refused connection is said at once, with the host and a network fix, though
    the scheduler's own retry would repeat UNAVAILABLE for 600 s."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
        CloudSchedulerGrpcTransport,
    )

    from govctl.errors import Unreachable
    from govctl.gcp import clients

    address = f"127.0.0.1:{closed_port()}"
    channel = clients.google_channel(CloudSchedulerGrpcTransport)(
        address, credentials=AnonymousCredentials()
    )
    started = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        _scheduler_on(channel).get_job(name=JOB_NAME)  # type: ignore[attr-defined]
    assert time.monotonic() - started < BOUND_S
    assert str(caught.value).startswith(f"cannot reach {address} (")
    assert "refused" in str(caught.value) and "check your network/proxy" in str(caught.value)


def test_a_google_storage_host_that_refuses_is_named_with_the_network_fix() -> None:
    """The adapter a Google storage session (and its token refreshes) gets: each request names
    its own host. The storage library's retry (120 s) would repeat a refused connection."""
    import requests

    from govctl.errors import Unreachable
    from govctl.gcp import deadlines

    session = requests.Session()
    adapter = deadlines.http_adapter(deadlines.Endpoint("storage.googleapis.com"))
    session.mount("http://", adapter)
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(Unreachable) as caught:
        session.get(f"http://{address}/storage/v1/b/digests")
    said = str(caught.value)
    assert said.startswith(f"cannot reach {address} (") and "refused" in said
    assert said.endswith("check your network/proxy (HTTPS_PROXY, NO_PROXY) and retry")


def test_a_silent_grpc_endpoint_ends_at_the_attempt_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from govctl.errors import NoAnswer
    from govctl.gcp import clients, deadlines

    monkeypatch.setattr(deadlines, "ATTEMPT_S", 0.5)
    with BlackHole() as hole:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", hole.address)
        started = time.monotonic()
        said = re.escape(f"{hole.address} did not answer within 0.5 s")
        with pytest.raises(NoAnswer, match=said):
            clients.scheduler().get_job(name=JOB_NAME)
        assert time.monotonic() - started < BOUND_S  # not 600 s of the library's retry


def test_a_silent_storage_endpoint_ends_at_the_read_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from govctl.errors import NoAnswer
    from govctl.gcp import clients, deadlines

    monkeypatch.setattr(deadlines, "ATTEMPT_S", 0.5)
    with BlackHole() as hole:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", f"127.0.0.1:{closed_port()}")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{hole.address}")
        started = time.monotonic()
        with pytest.raises(NoAnswer, match=re.escape("did not answer within 0.5 s")):
            clients.storage_client(PROJECT).get_bucket("digests")
        # One attempt: the storage library's default retry (120 s) does not repeat it.
        assert time.monotonic() - started < BOUND_S
        assert hole.accepted == 1


def test_a_method_that_only_says_try_again_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cloud Scheduler's GetJob is retried on UNAVAILABLE for up to 600 s by the library; an
    endpoint that answers nothing else is given up after RETRY_S."""
    import grpc
    from google.cloud import scheduler_v1

    from govctl.errors import NoAnswer
    from govctl.gcp import clients, deadlines
    from tests.support.stand_in import stand_in

    monkeypatch.setattr(deadlines, "RETRY_S", 1.0)
    calls: list[float] = []

    def get_job(request: object, context: grpc.ServicerContext) -> scheduler_v1.Job:
        calls.append(time.monotonic())
        context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        raise AssertionError("unreachable")

    handler = grpc.unary_unary_rpc_method_handler(
        get_job,
        request_deserializer=scheduler_v1.GetJobRequest.deserialize,
        response_serializer=scheduler_v1.Job.serialize,
    )
    with stand_in("google.cloud.scheduler.v1.CloudScheduler", {"GetJob": handler}) as address:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
        with pytest.raises(NoAnswer):
            clients.scheduler().get_job(name=JOB_NAME)
    assert len(calls) >= 2  # the library did retry
    assert calls[-1] - calls[0] < BOUND_S


def test_a_watcher_rides_out_an_emulator_that_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused connection ends a one-off read at once; a watcher (patient) keeps trying and
    reads the execution once the endpoint is back."""
    import grpc

    from govctl.errors import Unreachable
    from govctl.gcp import executions
    from tests.support.stand_in import stand_in

    def get_execution(
        request: run_v2.GetExecutionRequest, context: grpc.ServicerContext
    ) -> run_v2.Execution:
        return run_v2.Execution(name=request.name, task_count=1, running_count=1)

    handler = grpc.unary_unary_rpc_method_handler(
        get_execution,
        request_deserializer=run_v2.GetExecutionRequest.deserialize,
        response_serializer=run_v2.Execution.serialize,
    )
    port = closed_port()
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", f"127.0.0.1:{port}")
    name = "projects/p/locations/europe-west2/jobs/ingest/executions/ingest-a"
    with pytest.raises(Unreachable, match="is not running"):
        executions.get(name)
    back = threading.Event()

    def come_back() -> None:
        with stand_in("google.cloud.run.v2.Executions", {"GetExecution": handler}, port=port):
            back.wait(30)

    server = threading.Thread(target=come_back)
    timer = threading.Timer(1.0, server.start)
    timer.start()
    try:
        assert executions.get(name, patient=True).status == "running"
    finally:
        timer.cancel()
        back.set()
        if server.is_alive():
            server.join()


def test_doctor_names_the_missing_storage_setting(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GOVCTL_EMULATOR_HOST without STORAGE_EMULATOR_HOST: the storage reads would go to Google
    with no credentials; doctor says which variable is missing, not to log in to Google."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")

    main(["doctor"])
    out = capsys.readouterr().out

    bucket = next(line for line in out.splitlines() if "bucket access" in line)
    assert "GOVCTL_EMULATOR_HOST is set but STORAGE_EMULATOR_HOST is not" in bucket
    assert "application-default login" not in out
