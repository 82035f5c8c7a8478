"""The emulator as an operating-system process: record file, detach, stop, probe.

A running ``govctl emulator start`` writes ``emulator.json`` in its state directory
(pid, addresses, start time) once both servers answer, and removes it when it stops.
``--detach`` re-runs the foreground command as a child in a new session with its output in
``emulator.log`` and returns when that file appears. Nothing here imports grpc or Google
libraries at module level: ``status``/``env``/``stop`` stay fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from govctl.errors import GovctlError, UsageError

RECORD_FILE = "emulator.json"
LOG_FILE = "emulator.log"
LOCK_FILE = "emulator.lock"


@dataclass(frozen=True)
class Record:
    pid: int
    host: str
    port: int
    storage_port: int | None
    storage_pid: int | None
    state_dir: str
    started_at: str  # RFC 3339, UTC
    version: str
    rest_port: int | None = None  # the REST gateway (absent in records of older versions)

    def env(self) -> dict[str, str]:
        env = {"GOVCTL_EMULATOR_HOST": host_port(self.host, self.port)}
        if self.storage_port:
            env["STORAGE_EMULATOR_HOST"] = f"http://{host_port(self.host, self.storage_port)}"
        return env

    def gcloud_env(self) -> dict[str, str]:
        """The ``CLOUDSDK_*`` settings that point a plain gcloud at the REST gateway."""
        from govctl.emulator.rest.gcloud import gcloud_env

        if not self.rest_port:
            return {}
        return gcloud_env(self.host, self.rest_port, Path(self.state_dir))

    def uptime(self) -> float:
        return (datetime.now(UTC) - datetime.fromisoformat(self.started_at)).total_seconds()


def host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (``[::1]:8086``) as URLs and gRPC want it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def socket_family(host: str) -> int:
    """The address family a server binding ``host`` listens with (AF_INET6 for ``::1``)."""
    import socket

    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        return socket.AF_INET6 if ":" in host else socket.AF_INET


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


# exposure -----------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another host name (or "" = every interface): reachable from outside


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a bind address other machines can reach unless the caller opted in: whoever
    reaches the port can create jobs, and a job runs commands on this host."""
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            f"refusing --host {host!r}: expected a loopback address (127.0.0.1, ::1, localhost)",
            fix="anyone who reaches the port can run commands here; add --allow-remote "
            "if that is what you want",
        )


# record file --------------------------------------------------------------------------------
def write_record(state_dir: Path, record: Record) -> None:
    path = state_dir / RECORD_FILE
    tmp = path.with_name(f".{RECORD_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


def read_record(state_dir: Path) -> Record | None:
    """The record of the emulator running on ``state_dir``, or None.

    A record whose process died without cleaning up (or whose pid now belongs to another
    process: the directory's lock is then free) counts as none.
    """
    try:
        data = json.loads((state_dir / RECORD_FILE).read_text(encoding="utf-8"))
        record = Record(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as err:
        raise GovctlError(
            f"unreadable {state_dir / RECORD_FILE}: {err}",
            fix="delete it if no emulator is running",
        ) from None
    return record if pid_alive(record.pid) and state_dir_locked(state_dir) else None


def remove_record(state_dir: Path, pid: int) -> None:
    """Remove the record if it is still ``pid``'s (a newer emulator may have replaced it)."""
    path = state_dir / RECORD_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


# lock ---------------------------------------------------------------------------------------
def lock_state_dir(state_dir: Path) -> int:
    """Take the state directory's lock for this process; the fd holds it until closed."""
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GovctlError(
            f"another emulator is using the state directory {state_dir}",
            fix=f"stop it (`govctl emulator stop --state-dir {state_dir}`) or pick another",
        ) from None
    return fd


def state_dir_locked(state_dir: Path) -> bool:
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we got it
    return False


# processes ----------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """An exited process its parent has not reaped yet: it still answers kill(0). A detached
    emulator's adoptive parent may reap lazily. Linux only; elsewhere assume it is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop(record: Record, timeout: float = 10.0) -> bool:
    """SIGTERM the emulator and wait; SIGKILL it (and its storage server) if it hangs.

    Returns False when it had to be killed.
    """
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_gone(record.pid, timeout):
        return True
    for pid in (record.pid, record.storage_pid):
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_gone(record.pid, 5)
    remove_record(Path(record.state_dir), record.pid)
    return False


class StopSignals:
    """Catch SIGTERM, SIGINT (Ctrl-C) and SIGHUP (terminal closed) while in the block.

    Enter it *before* announcing readiness, so a stop sent as soon as the addresses appear
    is caught rather than killing the process with its servers still running. ``wait()``
    blocks until one arrives. The kernel may deliver a signal to one of grpc's threads,
    which would leave a plain ``Event.wait()`` in the main thread asleep; the wakeup fd
    wakes ``select()`` whichever thread gets it.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._r, self._w = -1, -1
        self._previous: dict[int, Any] = {}
        self._old_fd = -1

    def _handler(self, signum: int, frame: object) -> None:
        self._stop.set()

    def __enter__(self) -> StopSignals:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._previous = {sig: signal.signal(sig, self._handler) for sig in self.SIGNALS}
        self._old_fd = signal.set_wakeup_fd(self._w)
        return self

    def wait(self) -> None:
        while not self._stop.is_set():
            if select.select([self._r], [], [], 5.0)[0]:
                os.read(self._r, 64)

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._old_fd)
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        os.close(self._r)
        os.close(self._w)


def spawn_detached(argv: Sequence[str], state_dir: Path, timeout: float = 30.0) -> Record:
    """Run ``python -m govctl <argv>`` in a new session; return its record once ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "govctl", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the terminal that started it
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        record = read_record(state_dir)
        if record is not None and record.pid == proc.pid:
            return record
        code = proc.poll()
        if code is not None:
            raise GovctlError(
                f"the emulator exited with status {code} while starting: {_last_line(log_path)}",
                fix=f"see {log_path}",
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise GovctlError(
                f"the emulator did not start in {timeout:.0f} s", fix=f"see {log_path}"
            )
        time.sleep(0.02)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1].strip() if lines else "(no output)"


# probes ----------------------------------------------------------------------------------
def grpc_answers(address: str, timeout: float = 1.0) -> bool:
    """Whether a gRPC server completes the HTTP/2 handshake at ``address``."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
    return True


def storage_answers(url: str, timeout: float = 1.0) -> bool:
    import urllib.error
    import urllib.request  # 0.1 s: only `status` needs it

    try:
        with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
