"""Cloud Logging entries as govctl records: list with a filter, tail with TailLogEntries.

Reads go through the generated ``LoggingServiceV2Client`` (the hand-written
``google.cloud.logging.Client`` has no emulator setting and adds ``timestamp>=now-24h`` to
every filter). ``entries.list`` has a small read quota (about 60 requests a minute per
project): RESOURCE_EXHAUSTED is retried with backoff, and said as a warning on the
``govctl.gcp.logs`` logger (the CLI shows govctl's warnings on stderr), never a traceback.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from govctl.errors import CloudError
from govctl.gcp import clients
from govctl.gcp.errors import translate

EXECUTION_LABEL = "run.googleapis.com/execution_name"
TASK_LABEL = "run.googleapis.com/task_index"
ATTEMPT_LABEL = "run.googleapis.com/task_attempt"
MAX_PAGE = 1000  # ListLogEntries refuses a larger page_size

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogEntry:
    timestamp: datetime
    severity: str  # DEFAULT, DEBUG, INFO, …, ERROR, CRITICAL
    message: str  # jsonPayload.message, or the textPayload
    fields: dict[str, Any]  # the rest of jsonPayload
    insert_id: str
    log_name: str
    resource_type: str
    resource_labels: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    http_status: int | None = None

    @property
    def execution(self) -> str | None:
        return self.labels.get(EXECUTION_LABEL)

    @property
    def task_index(self) -> int | None:
        value = self.labels.get(TASK_LABEL)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def attempt(self) -> int | None:
        value = self.labels.get(ATTEMPT_LABEL)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def key(self) -> tuple[str, str, datetime]:
        """What makes an entry unique (insert ids are unique per log and timestamp)."""
        return (self.log_name, self.insert_id, self.timestamp)


@dataclass(frozen=True)
class Suppressed:
    """Entries the tail stream dropped (rate limit, or a client too slow to read them)."""

    reason: str
    count: int


def _plain(value: Any) -> Any:
    # Struct numbers are doubles: 3.0 means 3 to the operator.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_entry(entry: Any) -> LogEntry:
    from google.cloud.logging_v2.types import LogEntry as LogEntryType
    from google.logging.type import log_severity_pb2
    from google.protobuf import json_format

    pb = entry if hasattr(entry, "WhichOneof") else LogEntryType.pb(entry)
    payload: dict[str, Any] = {}
    message = ""
    kind = pb.WhichOneof("payload")
    if kind == "json_payload":
        payload = _plain(json_format.MessageToDict(pb.json_payload))
        message = str(payload.pop("message", ""))
    elif kind == "text_payload":
        message = pb.text_payload
    elif kind == "proto_payload":
        message = pb.proto_payload.TypeName()
    return LogEntry(
        timestamp=pb.timestamp.ToDatetime(tzinfo=UTC),
        severity=log_severity_pb2.LogSeverity.Name(pb.severity),
        message=message.rstrip("\n"),
        fields=payload,
        insert_id=pb.insert_id,
        log_name=pb.log_name,
        resource_type=pb.resource.type,
        resource_labels=dict(pb.resource.labels),
        labels=dict(pb.labels),
        http_status=pb.http_request.status if pb.HasField("http_request") else None,
    )


def _quota_retry() -> Any:
    from google.api_core import exceptions as gex
    from google.api_core import retry

    def said(err: Exception) -> None:
        if isinstance(err, gex.ResourceExhausted):
            log.warning("Cloud Logging's read quota (about 60 reads a minute per project) is "
                        "used up; retrying with backoff")  # fmt: skip
        else:
            log.warning("Cloud Logging did not answer (%s); retrying with backoff",
                        type(err).__name__)  # fmt: skip

    return retry.Retry(
        predicate=retry.if_exception_type(gex.ResourceExhausted, gex.ServiceUnavailable),
        initial=2.0,
        maximum=30.0,
        multiplier=2.0,
        timeout=180.0,
        on_error=said,
    )


def list_entries(
    project: str,
    filter_: str,
    *,
    limit: int = 50,
    newest_first: bool = True,
) -> list[LogEntry]:
    """Up to ``limit`` matching entries, newest first (or oldest first)."""
    from google.cloud.logging_v2.types import ListLogEntriesRequest

    request = ListLogEntriesRequest(
        resource_names=[f"projects/{project}"],
        filter=filter_,
        order_by="timestamp desc" if newest_first else "timestamp asc",
        page_size=min(max(limit, 1), MAX_PAGE),
    )
    result: list[LogEntry] = []
    with translate("read logs", denied="reading logs needs roles/logging.viewer on the project"):
        pager = clients.logging().list_log_entries(request=request, retry=_quota_retry())
        for entry in pager:
            result.append(to_entry(entry))
            if len(result) >= limit:
                break
    return result


class Tail:
    """A TailLogEntries stream read by a thread into a queue; ``get`` returns what arrived.

    The stream may end (UNAVAILABLE, a dropped connection, the API's own one-hour limit):
    ``ended`` is then set with the reason, and the caller reconnects (a new ``Tail``)
    and fills the gap with ``list_entries`` from the last timestamp it saw.
    """

    def __init__(self, project: str, filter_: str) -> None:
        self.project = project
        self.filter = filter_
        self.items: queue.Queue[LogEntry | Suppressed] = queue.Queue()
        self.ended: str | None = None
        self._stream: Any = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="log-tail", daemon=True)

    def start(self) -> Tail:
        from google.cloud.logging_v2.types import TailLogEntriesRequest

        request = TailLogEntriesRequest(
            resource_names=[f"projects/{self.project}"], filter=self.filter
        )
        from google.api_core import exceptions as gex

        with translate(
            "follow logs", denied="following logs needs roles/logging.viewer on the project"
        ):
            try:
                # The client reads the first response before returning: the stream is open.
                self._stream = clients.logging().tail_log_entries(requests=iter([request]))
            except gex.ResourceExhausted as err:
                raise CloudError(
                    f"follow logs: Cloud Logging refused another live tail ({err.message})",
                    fix="a project has at most 10 at once: stop another `govctl logs -f` or "
                    "`gcloud logging tail`, or read without -f",
                ) from None
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            for response in self._stream:
                for info in response.suppression_info:
                    reason = type(info).Reason(info.reason).name if info.reason else "UNKNOWN"
                    self.items.put(Suppressed(reason, info.suppressed_count))
                for entry in response.entries:
                    self.items.put(to_entry(entry))
            self.ended = "the stream ended"
        except Exception as err:  # the reason is reported; the caller reconnects or stops
            self.ended = "" if self._closed.is_set() else f"{type(err).__name__}: {err}"

    def get(self, timeout: float) -> Iterator[LogEntry | Suppressed]:
        """What arrived within ``timeout`` seconds (waits for the first item at most that)."""
        try:
            yield self.items.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            try:
                yield self.items.get_nowait()
            except queue.Empty:
                return

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or not self.items.empty()

    def close(self) -> None:
        self._closed.set()
        if self._stream is not None:
            self._stream.cancel()
        self._thread.join(timeout=5)

    def __enter__(self) -> Tail:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
