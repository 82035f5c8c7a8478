"""Structured logs for Cloud Logging: one JSON object per line on stdout.

Cloud Run forwards every stdout line to Cloud Logging, which parses a JSON line and promotes
``severity``, ``message`` and ``time`` to the entry's own fields, so ``severity>=ERROR``
filters work (the previous job's ``level`` key was ignored). Everything else lands in
``jsonPayload`` (``repo``, ``duration_s``, ``reason``, …).

We write to the stream ourselves, under a lock, instead of going through the root logger:
importing gitingest replaces the root logging handlers with loguru's, which would silently
reroute or reformat our lines.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def utc_now() -> str:
    """The current time as RFC 3339 in UTC with a ``Z`` suffix."""
    return rfc3339(datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """Make a field value JSON-serialisable (paths, exceptions, sets…) without failing a log."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


class Logger:
    """Writes log records to ``stream``: JSON lines, or readable lines for a terminal.

    ``human=None`` chooses by ``stream.isatty()``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        human: bool | None = None,
        min_severity: str = "INFO",
        base: dict[str, Any] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if human is None:
            isatty = getattr(self.stream, "isatty", None)
            human = bool(isatty and isatty())
        self.human = human
        self.min_level = SEVERITIES.index(min_severity)
        self.base = dict(base or {})
        # Re-entrant: a signal handler running on the main thread may log while it holds the lock.
        self._lock = threading.RLock()

    def log(self, severity: str, message: str, **fields: Any) -> None:
        if SEVERITIES.index(severity) < self.min_level:
            return
        record: dict[str, Any] = {"severity": severity, "message": message, "time": utc_now()}
        record.update(self.base)
        record.update({k: _plain(v) for k, v in fields.items() if v is not None})
        line = self._human(record) if self.human else json.dumps(record, ensure_ascii=False)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                # A closed or broken stdout must never take the job down with it.
                pass

    @staticmethod
    def _human(record: dict[str, Any]) -> str:
        stamp = record["time"][11:19]
        extra = " ".join(
            f"{k}={v}" for k, v in record.items() if k not in ("severity", "message", "time")
        )
        return f"{stamp} {record['severity']:<8} {record['message']}" + (
            f"  {extra}" if extra else ""
        )

    def debug(self, message: str, **fields: Any) -> None:
        self.log("DEBUG", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)

    def critical(self, message: str, **fields: Any) -> None:
        self.log("CRITICAL", message, **fields)


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Remaining time at the current rate, or None before anything is done."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, (total - done) * elapsed / done)


class Progress:
    """Logs a progress line every ``interval`` seconds from a daemon thread until stopped.

    ``snapshot`` returns ``(done, total, extra_fields)``; the line carries counts, the rate in
    repositories per second and the ETA.
    """

    def __init__(
        self,
        logger: Logger,
        snapshot: Callable[[], tuple[int, int, dict[str, Any]]],
        *,
        interval: float = 30.0,
    ) -> None:
        self.logger = logger
        self.snapshot = snapshot
        self.interval = interval
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> Progress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def emit(self) -> None:
        done, total, extra = self.snapshot()
        elapsed = time.monotonic() - self._started
        eta = eta_seconds(done, total, elapsed)
        self.logger.info(
            f"progress {done}/{total}",
            done=done,
            total=total,
            rate_per_s=round(done / elapsed, 3) if elapsed > 0 else 0.0,
            eta_s=None if eta is None else round(eta, 1),
            elapsed_s=round(elapsed, 1),
            **extra,
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
