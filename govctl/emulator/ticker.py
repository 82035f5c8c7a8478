"""A background thread that calls a function every few seconds while the emulator runs.

Services with periodic work (Cloud Scheduler's due jobs, Monitoring's absence conditions)
start one in :meth:`Service.start` and stop it in :meth:`Service.stop`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Ticker:
    def __init__(self, name: str, interval: float, tick: Callable[[], None]) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: a long tick checks it to end early."""
        return self._stop.is_set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()
