"""Endpoints that are down in the two ways an operator meets: a closed port (refused at once)
and a black hole (a listener that accepts every connection and never answers a byte, as a
hung server or a silent firewall does)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BlackHole:
    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self._held: list[socket.socket] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            with self._changed:
                self._held.append(conn)
                self._changed.notify_all()

    @property
    def accepted(self) -> int:
        with self._changed:
            return len(self._held)

    def wait_for(self, connections: int, timeout: float) -> bool:
        """Whether ``connections`` have been accepted within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._held) < connections:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._sock.close()
        with self._changed:
            for conn in self._held:
                conn.close()
