"""Cloud Logging v2 (``google.logging.v2.LoggingServiceV2``): write, list and tail entries.

Entries live in memory as raw ``LogEntry`` protobufs, sorted by (timestamp, insert_id) —
the order ListLogEntries returns — and bounded to the newest :attr:`LoggingService.max_entries`.
Other services append through :meth:`LoggingService.write_entries`; every tail session has
a queue that writers push to, so a new entry reaches tailers without polling.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import grpc
from google.cloud.logging_v2 import types
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Service
from govctl.emulator.logging.filter import FilterError, LogFilter
from govctl.emulator.rpc import RpcError, invalid_argument

LogEntryPb: Any = types.LogEntry.pb()
WriteRequestPb: Any = types.WriteLogEntriesRequest.pb()
WriteResponsePb: Any = types.WriteLogEntriesResponse.pb()
ListRequestPb: Any = types.ListLogEntriesRequest.pb()
ListResponsePb: Any = types.ListLogEntriesResponse.pb()
TailRequestPb: Any = types.TailLogEntriesRequest.pb()
TailResponsePb: Any = types.TailLogEntriesResponse.pb()
PartialErrorsPb: Any = types.WriteLogEntriesPartialErrors.pb()

_PARENT_KINDS = "projects|organizations|folders|billingAccounts"
_PARENT = re.compile(rf"(?:{_PARENT_KINDS})/[^/]+")
_VIEW = re.compile(rf"((?:{_PARENT_KINDS})/[^/]+)/locations/[^/]+/buckets/[^/]+/views/[^/]+")
_LOG_NAME = re.compile(rf"((?:{_PARENT_KINDS})/[^/]+)/logs/([^/]+)")
_LOG_ID = re.compile(r"[A-Za-z0-9/_\-.]+")

# Limits the real API documents (google/logging/v2/logging.proto, cloud.google.com/logging/quotas).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_RESOURCE_NAMES = 100
MAX_ENTRY_BYTES = 256 * 1024
MAX_BUFFER_WINDOW_MS = 60_000
# A tailer that falls this far behind loses entries, reported as NOT_CONSUMED suppression.
TAIL_QUEUE_LIMIT = 10_000


class _Stored:
    """One entry: its serialized bytes (what is saved), the message decoded on first use."""

    __slots__ = ("_key", "_parent", "_pb", "raw")

    def __init__(self, raw: bytes, pb: Any = None) -> None:
        self.raw = raw
        self._pb = pb
        self._key: tuple[int, str] | None = None
        self._parent: str | None = None

    # Lazy, so that loading a large state file only splits bytes. Racing readers compute
    # the same values, so the caches need no lock.
    @property
    def pb(self) -> Any:
        if self._pb is None:
            self._pb = LogEntryPb.FromString(self.raw)
        return self._pb

    @property
    def key(self) -> tuple[int, str]:
        """(timestamp ns, insert_id): the list order."""
        if self._key is None:
            ts = self.pb.timestamp
            self._key = (ts.seconds * 1_000_000_000 + ts.nanos, self.pb.insert_id)
        return self._key

    @property
    def parent(self) -> str:
        """projects/P: the part of log_name before /logs/."""
        if self._parent is None:
            m = _LOG_NAME.fullmatch(self.pb.log_name)
            self._parent = m.group(1) if m else ""
        return self._parent


def _encode_chunk(chunk: list[_Stored]) -> str:
    body = b"".join(len(s.raw).to_bytes(4, "big") + s.raw for s in chunk)
    return base64.b64encode(zlib.compress(body, 6)).decode()


def _decode_chunk(text: str) -> list[_Stored]:
    body = zlib.decompress(base64.b64decode(text))
    out, i = [], 0
    while i < len(body):
        n = int.from_bytes(body[i : i + 4], "big")
        out.append(_Stored(body[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def _key(stored: _Stored) -> tuple[int, str]:
    return stored.key


@dataclass(eq=False)  # identity-hashed: kept in a set
class _Tailer:
    """The queue of one TailLogEntries session."""

    wake: threading.Event = field(default_factory=threading.Event)
    pending: list[_Stored] = field(default_factory=list)
    suppressed: int = 0

    def push(self, stored: _Stored) -> None:  # caller holds the service lock
        if len(self.pending) >= TAIL_QUEUE_LIMIT:
            self.suppressed += 1
        else:
            self.pending.append(stored)
        self.wake.set()


def _parents(resource_names: Iterable[str]) -> set[str]:
    names = list(resource_names)
    if not names:
        raise invalid_argument("resource_names: at least one resource name is required")
    if len(names) > MAX_RESOURCE_NAMES:
        raise invalid_argument(f"resource_names: at most {MAX_RESOURCE_NAMES} are allowed")
    parents = set()
    for name in names:
        if _PARENT.fullmatch(name):
            parents.add(name)
            continue
        view = _VIEW.fullmatch(name)
        if view:
            # The emulator has no log buckets: a view shows every entry of its parent.
            parents.add(view.group(1))
            continue
        raise invalid_argument(
            f"resource_names: invalid resource name {name!r}; expected projects/PROJECT_ID "
            "(or organizations/, folders/, billingAccounts/, or a log view)"
        )
    return parents


def _compile(text: str) -> LogFilter:
    try:
        return LogFilter.parse(text)
    except FilterError as err:
        raise invalid_argument(f"invalid filter: {err}") from None


@functools.lru_cache(maxsize=1024)
def _log_name_problem(log_name: str) -> str | None:
    """Why ``log_name`` is invalid, or None (cached: a task writes to the same few logs)."""
    if not log_name:
        return "log_name is required (in the entry or the request)"
    m = _LOG_NAME.fullmatch(log_name)
    if not m:
        return (
            f"invalid log_name {log_name!r}: expected projects/PROJECT_ID/logs/LOG_ID "
            "with LOG_ID URL-encoded (e.g. run.googleapis.com%2Fstdout)"
        )
    log_id = unquote(m.group(2))
    if len(log_id) >= 512 or not _LOG_ID.fullmatch(log_id):
        return (
            f"invalid log_name {log_name!r}: LOG_ID must be under 512 characters of "
            "letters, digits, '/', '_', '-' and '.'"
        )
    return None


def _check_entry(pb: Any) -> None:
    """Validate one entry after request defaults were applied; raises INVALID_ARGUMENT."""
    if pb.log_name.startswith("/"):
        pb.log_name = pb.log_name[1:]  # the API strips a leading slash
    problem = _log_name_problem(pb.log_name)
    if problem:
        raise invalid_argument(problem)
    if not pb.resource.type:
        raise invalid_argument("resource is required (in the entry or the request)")
    size = pb.ByteSize()
    if size > MAX_ENTRY_BYTES:
        raise invalid_argument(f"log entry is {size} bytes; the maximum is {MAX_ENTRY_BYTES}")


def _page_token(direction: str, key: tuple[int, str]) -> str:
    raw = f"{direction}:{key[0]}:{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_page_token(token: str, direction: str) -> tuple[int, str]:
    try:
        tok_dir, ns, insert_id = base64.urlsafe_b64decode(token.encode()).decode().split(":", 2)
        if tok_dir == direction:
            return int(ns), insert_id
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise invalid_argument(f"invalid page_token {token!r}")


class LoggingService(Service):
    key = "logging"
    # Retention: the newest max_entries by timestamp (plus up to a chunk more) are kept. The
    # real _Default bucket keeps 30 days; a local emulator keeps a count so its state stays small.
    max_entries = 100_000
    # Saved state holds entries in compressed chunks of this many; a save re-encodes only the
    # chunks that changed since the last one (normally just the newest).
    chunk_size = 1000

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._entries: list[_Stored] = []
        self._next_id = 1
        self._chunks: list[str] = []  # encoded chunks of _entries, valid below _clean
        self._clean = 0
        self._tailers: set[_Tailer] = set()
        self._stopping = threading.Event()

    # --- shared with other services -----------------------------------------------------------
    def write_entries(self, entries: Iterable[Any]) -> None:
        """Append entries (proto-plus or raw ``LogEntry``), filling timestamp, receive_timestamp
        and insert_id when empty, and wake tailers. Raises RpcError on an invalid entry."""
        pbs = []
        for entry in entries:
            pb = LogEntryPb()
            pb.CopyFrom(types.LogEntry.pb(entry) if isinstance(entry, types.LogEntry) else entry)
            _check_entry(pb)
            pbs.append(pb)
        self._append(pbs)

    def matcher(self, text: str) -> Any:
        """A predicate over ``LogEntry`` pbs for the query ``text``; RpcError if unsupported."""
        return _compile(text).matches

    def _append(self, pbs: list[Any]) -> None:
        if not pbs:
            return
        now_ns = int(self.cloud.clock.timestamp() * 1_000_000) * 1000
        with self.lock:
            for pb in pbs:
                if not pb.HasField("timestamp"):
                    pb.timestamp.FromNanoseconds(now_ns)
                pb.receive_timestamp.FromNanoseconds(now_ns)
                if not pb.insert_id:
                    # Fixed width, so later writes sort after earlier ones at equal timestamps.
                    pb.insert_id = f"{self._next_id:016x}"
                    self._next_id += 1
                stored = _Stored(pb.SerializeToString(), pb)
                if not self._entries or stored.key >= self._entries[-1].key:
                    self._entries.append(stored)
                else:
                    at = bisect.bisect_right(self._entries, stored.key, key=_key)
                    self._entries.insert(at, stored)
                    self._clean = min(self._clean, at)
                for tailer in self._tailers:
                    tailer.push(stored)
            # Trim whole chunks so the saved chunks before the trimmed ones stay valid.
            size = self.chunk_size
            drop = (len(self._entries) - self.max_entries) // size * size
            if drop > 0:
                del self._entries[:drop]
                del self._chunks[: drop // size]
                self._clean = max(0, self._clean - drop)
        self.changed()
        self.cloud.publish("logging.entries_written", {"entries": pbs})

    # --- RPCs ---------------------------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        # Raw requests: entries are stored as raw LogEntry protobufs, and this is the hot path.
        api = gapic_api("google.cloud.logging_v2.services.logging_service_v2")
        return [
            api.bind(
                {
                    "WriteLogEntries": self._write,
                    "ListLogEntries": self._list,
                    "TailLogEntries": self._tail,
                },
                raw=True,
            )
        ]

    def _write(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.entries:
            raise invalid_argument("entries: at least one log entry is required")
        valid: list[Any] = []
        errors: dict[int, str] = {}
        for i, entry in enumerate(request.entries):
            pb = _with_defaults(entry, request)
            try:
                _check_entry(pb)
            except RpcError as err:
                errors[i] = err.message
                continue
            valid.append(pb)
        if errors and not request.partial_success:
            i, message = next(iter(errors.items()))
            raise invalid_argument(f"entries[{i}]: {message}")
        if not request.dry_run:
            self._append(valid)
        if errors:
            # partial_success: the valid entries were written; say which ones were not.
            context.abort_with_status(rpc_status.to_status(_partial_errors(errors, request)))
        return WriteResponsePb()

    def _list(self, request: Any, context: grpc.ServicerContext) -> Any:
        parents = _parents(request.resource_names)
        flt = _compile(request.filter)
        descending = _descending(request.order_by)
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            raise invalid_argument(f"page_size must be between 0 and {MAX_PAGE_SIZE}")
        size = request.page_size or DEFAULT_PAGE_SIZE
        direction = "d" if descending else "a"
        with self.lock:
            entries = list(self._entries)  # filter outside the lock: writers keep going
        after = _read_page_token(request.page_token, direction) if request.page_token else None
        candidates = _from(entries, after, descending)
        page: list[_Stored] = []
        more = False
        for stored in candidates:
            if stored.parent in parents and flt.matches(stored.pb):
                if len(page) == size:
                    more = True
                    break
                page.append(stored)
        response = ListResponsePb()
        response.entries.extend(s.pb for s in page)
        if more:
            response.next_page_token = _page_token(direction, page[-1].key)
        return response

    def _tail(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        request = next(requests, None)
        if request is None:
            return
        parents = _parents(request.resource_names)
        flt = _compile(request.filter)
        if request.HasField("buffer_window"):
            window_ms = request.buffer_window.ToMilliseconds()
            if not 0 <= window_ms <= MAX_BUFFER_WINDOW_MS:
                raise invalid_argument(
                    f"buffer_window must be between 0 and {MAX_BUFFER_WINDOW_MS} milliseconds"
                )
        tailer = _Tailer()
        with self.lock:
            self._tailers.add(tailer)
        context.add_callback(tailer.wake.set)  # runs when the client cancels or the call ends
        try:
            # The GAPIC client waits for a first response before tail_log_entries() returns,
            # so say at once that the session is open.
            yield TailResponsePb()
            while context.is_active() and not self._stopping.is_set():
                # Woken by writers, cancellation and stop(); the timeout only guards against
                # a termination callback that never comes.
                tailer.wake.wait(timeout=5.0)
                with self.lock:
                    tailer.wake.clear()
                    batch, tailer.pending = tailer.pending, []
                    suppressed, tailer.suppressed = tailer.suppressed, 0
                matching = [s for s in batch if s.parent in parents and flt.matches(s.pb)]
                if not matching and not suppressed:
                    continue
                response = TailResponsePb()
                response.entries.extend(s.pb for s in sorted(matching, key=_key))
                if suppressed:
                    info = response.suppression_info.add()
                    info.reason = types.TailLogEntriesResponse.SuppressionInfo.Reason.NOT_CONSUMED
                    info.suppressed_count = suppressed
                yield response
        finally:
            with self.lock:
                self._tailers.discard(tailer)

    # --- lifecycle ----------------------------------------------------------------------------
    def stopping(self) -> None:
        # Tail loops see the flag and return: their streams end with OK.
        self._stopping.set()
        with self.lock:
            for tailer in self._tailers:
                tailer.wake.set()

    def stop(self) -> None:
        self.stopping()

    def dump(self) -> Any:
        size = self.chunk_size
        first_dirty = self._clean // size
        del self._chunks[first_dirty:]
        for start in range(first_dirty * size, len(self._entries), size):
            self._chunks.append(_encode_chunk(self._entries[start : start + size]))
        # The last, partial chunk is re-encoded on the next save, once it has grown.
        self._clean = len(self._entries) // size * size
        return {
            "version": 1,
            "next_insert_id": self._next_id,
            "chunk_size": size,
            "chunks": list(self._chunks),
        }

    def load(self, data: Any) -> None:
        if not isinstance(data, dict) or data.get("version") != 1:
            return
        chunks = list(data.get("chunks", []))
        entries = [s for chunk in chunks for s in _decode_chunk(chunk)]
        self._next_id = int(data.get("next_insert_id", len(entries) + 1))
        if len(entries) <= self.max_entries and data.get("chunk_size") == self.chunk_size:
            # Saved in list order: the loaded chunks are valid as they are.
            self._entries, self._chunks = entries, chunks
            self._clean = len(entries) // self.chunk_size * self.chunk_size
        else:
            self._entries = entries[len(entries) - self.max_entries :] if self.max_entries else []
            self._chunks, self._clean = [], 0


def _with_defaults(entry: Any, request: Any) -> Any:
    """A copy of a written entry with the request-level defaults filled in where it leaves them
    empty, as the API documents (``log_name``, ``resource``, ``labels``)."""
    pb = LogEntryPb()
    pb.CopyFrom(entry)
    if not pb.log_name:
        pb.log_name = request.log_name
    if not pb.HasField("resource") and request.HasField("resource"):
        pb.resource.CopyFrom(request.resource)
    for k, v in request.labels.items():
        if k not in pb.labels:
            pb.labels[k] = v
    return pb


def _partial_errors(errors: dict[int, str], request: Any) -> status_pb2.Status:
    """The status of a partial_success write, with WriteLogEntriesPartialErrors as detail."""
    details = PartialErrorsPb()
    for i, message in errors.items():
        details.log_entry_errors[i].CopyFrom(
            status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message)
        )
    packed = any_pb2.Any()
    packed.Pack(details)
    first = next(iter(errors.items()))
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message=f"{len(errors)} of {len(request.entries)} entries were not written; "
        f"entries[{first[0]}]: {first[1]}",
        details=[packed],
    )


def _descending(order_by: str) -> bool:
    order = " ".join(order_by.split()).lower()
    if order in ("", "timestamp asc", "timestamp"):
        return False
    if order == "timestamp desc":
        return True
    raise invalid_argument(
        f'order_by {order_by!r} is not supported: use "timestamp asc" or "timestamp desc"'
    )


def _from(
    entries: list[_Stored], after: tuple[int, str] | None, descending: bool
) -> Iterable[_Stored]:
    """The entries a page reads, in list order, starting after the page token's entry."""
    if descending:
        end = len(entries) if after is None else bisect.bisect_left(entries, after, key=_key)
        return reversed(entries[:end])
    start = 0 if after is None else bisect.bisect_right(entries, after, key=_key)
    return entries[start:]
