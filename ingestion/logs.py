"""Structured logs for Cloud Logging through the standard library's ``logging``.

Cloud Run forwards every stdout line to Cloud Logging, which parses a line holding a JSON object
and promotes its special fields to the entry's own (Google's "Structured logging" page,
https://cloud.google.com/logging/docs/structured-logging): ``severity``, ``message``, ``time``,
``logging.googleapis.com/labels``, ``logging.googleapis.com/sourceLocation``, … Every other key
lands in ``jsonPayload`` (``repo``, ``reason``, ``duration_s``, …), so ``severity>=ERROR`` and
``jsonPayload.repo="org/name"`` filters work.

:func:`configure` puts one handler on the root logger: the job's own records (logger
``ingestion``, fields passed as ``extra=``) and those of the libraries it uses (the storage
client, urllib3, …, at WARNING and above) come out in that one format. A terminal gets readable
lines instead. The handler never lets a broken stdout take the job down.

python-json-logger does the formatting (a pure-Python package with no dependencies) rather than
google-cloud-logging's ``StructuredLogHandler``, which would bring grpc and the Logging API
client into an image that never calls that API.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from ingestion.clock import rfc3339

LOGGER = "ingestion"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Libraries' records below this level are not worth a line each (the storage client's retries
# log at DEBUG/INFO); the job's own level is LOG_LEVEL (INFO by default).
LIBRARY_LEVEL = logging.WARNING
SOURCE_LOCATION = "logging.googleapis.com/sourceLocation"
_SKIPPED = frozenset(RESERVED_ATTRS) | {"message", "asctime", "taskName"}


def get_logger(name: str = LOGGER) -> logging.Logger:
    return logging.getLogger(name)


def _plain(value: Any) -> Any:
    """A JSON value for any field value (paths, sets, exceptions…), never an error."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)  # the encoder then handles each element
    return str(value)


class CloudLoggingFormatter(JsonFormatter):
    """One JSON object per record with Cloud Logging's special fields first.

    Fields whose value is None are left out (a flag that is off says nothing). Records from
    other loggers than the job's carry ``logger`` and the source location, so a library's
    warning can be traced back.
    """

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(json_ensure_ascii=False, json_default=_plain)
        self.fields = dict(fields or {})

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["severity"] = record.levelname
        log_data["message"] = record.getMessage()
        log_data["time"] = rfc3339(datetime.fromtimestamp(record.created, UTC))
        log_data.update(self.fields)
        if record.name != LOGGER and not record.name.startswith(LOGGER + "."):
            log_data["logger"] = record.name
            log_data[SOURCE_LOCATION] = {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            }
        for key, value in record.__dict__.items():
            if key not in _SKIPPED and not key.startswith("_") and value is not None:
                log_data[key] = value
        if record.exc_info and "traceback" not in log_data:
            log_data["traceback"] = self.formatException(record.exc_info)


class HumanFormatter(logging.Formatter):
    """``HH:MM:SS SEVERITY message  key=value …`` for a person at a terminal."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.gmtime(record.created))
        extra = {
            **self.fields,
            **{
                k: v
                for k, v in record.__dict__.items()
                if k not in _SKIPPED and not k.startswith("_") and v is not None
            },
        }
        tail = " ".join(f"{k}={v}" for k, v in extra.items())
        line = f"{stamp} {record.levelname:<8} {record.getMessage()}" + (
            f"  {tail}" if tail else ""
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that stays quiet when the stream is gone (closed pipe, full disk):
    losing a log line must never stop the job, nor print logging's own traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        return None


def level_from(environ: Mapping[str, str]) -> str:
    """``LOG_LEVEL`` when it names a level, else INFO."""
    value = environ.get("LOG_LEVEL", "").strip().upper()
    return value if value in LEVELS else "INFO"


def configure(
    stream: TextIO | None = None,
    *,
    level: str = "INFO",
    human: bool | None = None,
    fields: Mapping[str, Any] | None = None,
) -> logging.Handler:
    """Send every record to ``stream`` (stdout by default): JSON lines, or readable lines when
    ``human`` (None: when the stream is a terminal). Replaces a handler installed before.

    ``fields`` are added to every line (``task_index``)."""
    stream = stream if stream is not None else sys.stdout
    if human is None:
        isatty = getattr(stream, "isatty", None)
        human = bool(isatty and isatty())
    handler = _Handler(stream)
    handler.setFormatter(HumanFormatter(fields) if human else CloudLoggingFormatter(fields))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LIBRARY_LEVEL)
    get_logger().setLevel(level)
    # google-api-core turns the "google" logger's propagation off when its first client is
    # made, unless that logger is configured already (client_logging.setup_logging in
    # googleapis/python-api-core): configured here, its records reach this handler too.
    google = logging.getLogger("google")
    google.setLevel(LIBRARY_LEVEL)
    google.propagate = True
    return handler


@contextmanager
def configured(stream: TextIO, *, level: str = "INFO", **kwargs: Any) -> Iterator[logging.Handler]:
    """:func:`configure` for the span of a ``with`` (tests, the demo): the root logger's
    handlers and levels are put back afterwards."""
    root, google = logging.getLogger(), logging.getLogger("google")
    saved = (list(root.handlers), root.level, get_logger().level, google.level, google.propagate)
    handler = configure(stream, level=level, **kwargs)
    try:
        yield handler
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
        get_logger().setLevel(saved[2])
        google.setLevel(saved[3])
        google.propagate = saved[4]


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Remaining time at the current rate, or None before anything is done."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, (total - done) * elapsed / done)


class Progress:
    """Logs a progress line every ``interval`` seconds from a daemon thread until stopped.

    ``snapshot`` returns ``(done, total, extra_fields)``; the line carries counts, the rate in
    repositories per second and the ETA. ``govctl run`` reads ``done``, ``total`` and ``eta_s``
    from these lines (the message is ``progress {done}/{total}``).
    """

    def __init__(
        self,
        snapshot: Callable[[], tuple[int, int, dict[str, Any]]],
        *,
        interval: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.log = logger or get_logger()
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
        fields = {
            "done": done,
            "total": total,
            "rate_per_s": round(done / elapsed, 3) if elapsed > 0 else 0.0,
            "eta_s": None if eta is None else round(eta, 1),
            "elapsed_s": round(elapsed, 1),
            **extra,
        }
        self.log.info("progress %d/%d", done, total, extra=fields)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


__all__ = [
    "LOGGER",
    "CloudLoggingFormatter",
    "HumanFormatter",
    "Progress",
    "configure",
    "configured",
    "eta_seconds",
    "get_logger",
    "level_from",
]
