"""Cloud Logging v2 on the emulator, driven through the official LoggingServiceV2Client."""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.logging_v2 import types
from google.logging.type import log_severity_pb2
from google.protobuf import duration_pb2

from govctl.emulator.cloud import Cloud
from govctl.emulator.logging.service import LoggingService
from govctl.emulator.server import Emulator
from govctl.gcp import clients

EXECUTION = "run.googleapis.com/execution_name"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_projects = itertools.count()


def job_resource(job: str = "ingest") -> dict[str, Any]:
    return {
        "type": "cloud_run_job",
        "labels": {"job_name": job, "location": "europe-west2", "project_id": "demo"},
    }


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    """One emulator for the module; each test writes to a project of its own."""
    with Emulator() as emu:
        yield emu


class Logs:
    """The official client plus this test's project."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.client = clients.logging()
        self.project = f"projects/test-{next(_projects)}"
        self.stdout = f"{self.project}/logs/run.googleapis.com%2Fstdout"

    def write(self, entries: list[dict[str, Any]], **request: Any) -> None:
        request.setdefault("log_name", self.stdout)
        request.setdefault("resource", job_resource())
        self.client.write_log_entries(request={**request, "entries": entries})

    def list(self, filter: str = "", **request: Any) -> list[types.LogEntry]:
        request.setdefault("resource_names", [self.project])
        return list(self.client.list_log_entries(request={**request, "filter": filter}))


def texts(entries: list[types.LogEntry]) -> list[str]:
    return [e.text_payload or e.json_payload["message"] for e in entries]


@pytest.fixture
def logs(shared_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Logs:
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", shared_emulator.grpc_address)
    return Logs(shared_emulator)


@pytest.fixture
def seeded(logs: Logs) -> Logs:
    """Five entries a minute apart from two executions of two jobs, plus another project."""
    logs.write(
        [
            {"text_payload": "starting", "severity": "INFO", "timestamp": T0},
            {
                "json_payload": {"message": "clone failed", "repo": "alphagov/whitehall"},
                "severity": "ERROR",
                "timestamp": T0 + timedelta(minutes=1),
            },
            {
                "text_payload": "Digest written",
                "severity": "NOTICE",
                "timestamp": T0 + timedelta(minutes=2),
            },
        ],
        labels={EXECUTION: "ingest-abc"},
    )
    logs.write(
        [
            {
                "text_payload": "Traceback: boom",
                "severity": "CRITICAL",
                "timestamp": T0 + timedelta(minutes=3),
                "log_name": f"{logs.project}/logs/run.googleapis.com%2Fstderr",
            },
            {
                "json_payload": {"message": "done", "repos": 12},
                "severity": "INFO",
                "timestamp": T0 + timedelta(minutes=4),
                "resource": job_resource("other"),
            },
        ],
        labels={EXECUTION: "ingest-def"},
    )
    logs.write(
        [{"text_payload": "elsewhere", "severity": "ERROR", "timestamp": T0}],
        log_name=f"{logs.project}-other/logs/app",
        resource={"type": "global"},
    )
    return logs


def test_written_entries_are_listed_with_server_filled_fields(logs: Logs) -> None:
    logs.write([{"text_payload": "hello"}, {"json_payload": {"message": "hi", "n": 3}}])
    first, second = logs.list()
    assert first.text_payload == "hello"
    assert first.log_name == logs.stdout
    assert first.resource.type == "cloud_run_job"
    assert first.resource.labels["job_name"] == "ingest"
    assert first.insert_id and second.insert_id and first.insert_id < second.insert_id
    assert first.timestamp and first.receive_timestamp
    assert abs(first.timestamp - datetime.now(UTC)) < timedelta(seconds=10)
    assert log_severity_pb2.LogSeverity.Name(first.severity) == "DEFAULT"
    assert second.json_payload["n"] == 3


def test_entry_values_win_over_request_defaults(logs: Logs) -> None:
    logs.write(
        [{"text_payload": "x", "labels": {"a": "entry"}, "insert_id": "mine"}],
        labels={"a": "request", "b": "request"},
    )
    (entry,) = logs.list()
    assert dict(entry.labels) == {"a": "entry", "b": "request"}
    assert entry.insert_id == "mine"


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("severity>=ERROR", ["clone failed", "Traceback: boom"]),
        (f'labels."{EXECUTION}"="ingest-def"', ["Traceback: boom", "done"]),
        ('resource.labels.job_name="other"', ["done"]),
        (
            'timestamp>="2024-05-01T12:01:00Z" AND timestamp<"2024-05-01T12:03:00Z"',
            ["clone failed", "Digest written"],
        ),
        ('jsonPayload.repo="alphagov/whitehall"', ["clone failed"]),
        ("jsonPayload.repos>10", ["done"]),
        ('textPayload:"digest"', ["Digest written"]),
        ('log_id("run.googleapis.com/stderr")', ["Traceback: boom"]),
        ("NOT severity=INFO", ["clone failed", "Digest written", "Traceback: boom"]),
        (
            '(severity=INFO OR severity=CRITICAL) AND resource.labels.job_name="ingest"',
            ["starting", "Traceback: boom"],
        ),
        ('-resource.labels.job_name="ingest"', ["done"]),
    ],
)
def test_list_filters(seeded: Logs, filter: str, expected: list[str]) -> None:
    assert texts(seeded.list(filter)) == expected


def test_log_name_filter(seeded: Logs) -> None:
    stderr = f"{seeded.project}/logs/run.googleapis.com%2Fstderr"
    assert texts(seeded.list(f'logName="{stderr}"')) == ["Traceback: boom"]


def test_other_projects_are_excluded_and_can_be_listed_together(seeded: Logs) -> None:
    assert "elsewhere" not in texts(seeded.list())
    both = [seeded.project, f"{seeded.project}-other"]
    assert texts(seeded.list("severity=ERROR", resource_names=both)) == [
        "elsewhere",
        "clone failed",
    ]


def test_order_by_timestamp_desc(seeded: Logs) -> None:
    assert texts(seeded.list(order_by="timestamp desc")) == [
        "done",
        "Traceback: boom",
        "Digest written",
        "clone failed",
        "starting",
    ]


@pytest.mark.parametrize("order_by", ["timestamp asc", "timestamp desc"])
def test_paging_with_page_size_one_walks_every_entry_once(seeded: Logs, order_by: str) -> None:
    pager = seeded.client.list_log_entries(
        request={"resource_names": [seeded.project], "page_size": 1, "order_by": order_by}
    )
    pages = list(pager.pages)
    assert [len(p.entries) for p in pages] == [1] * 5
    assert all(p.next_page_token for p in pages[:-1]) and not pages[-1].next_page_token
    got = [e.insert_id for p in pages for e in p.entries]
    assert got == [e.insert_id for e in seeded.list(order_by=order_by)]


def test_paging_a_filtered_list(seeded: Logs) -> None:
    pager = seeded.client.list_log_entries(
        request={"resource_names": [seeded.project], "page_size": 2, "filter": "severity>=NOTICE"}
    )
    assert [texts(list(p.entries)) for p in pager.pages] == [
        ["clone failed", "Digest written"],
        ["Traceback: boom"],
    ]


@pytest.mark.parametrize(
    "request_fields",
    [
        {"filter": "severity>=LOUD"},
        {"filter": 'protoPayload.methodName="x"'},
        {"filter": "(severity=ERROR"},
        {"order_by": "severity desc"},
        {"page_size": 1001},
        {"page_size": -1},
        {"page_token": "not-a-token"},
        {"resource_names": []},
        {"resource_names": ["demo"]},
    ],
)
def test_invalid_list_requests(logs: Logs, request_fields: dict[str, Any]) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        logs.client.list_log_entries(request={"resource_names": [logs.project], **request_fields})


def test_invalid_filter_message_names_the_construct(logs: Logs) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="httpRequest is not supported"):
        logs.list("httpRequest.status>=500")


@pytest.mark.parametrize(
    ("entry", "request_fields"),
    [
        ({"text_payload": "x"}, {"log_name": ""}),
        ({"text_payload": "x"}, {"log_name": "{project}/logs/run.googleapis.com/stdout"}),
        ({"text_payload": "x"}, {"log_name": "{project}/stdout"}),
        ({"text_payload": "x"}, {"log_name": "{project}/logs/bad%20name"}),
        ({"text_payload": "x"}, {"resource": None}),
        ({"text_payload": "x" * 300_000}, {}),
        ({}, {"entries": []}),
    ],
)
def test_invalid_writes_are_rejected(
    logs: Logs, entry: dict[str, Any], request_fields: dict[str, Any]
) -> None:
    request: dict[str, Any] = {"log_name": logs.stdout, "resource": job_resource()}
    request["entries"] = [entry]
    request.update(request_fields)
    request = {k: v for k, v in request.items() if v is not None}
    if "{project}" in request["log_name"]:
        request["log_name"] = request["log_name"].format(project=logs.project)
    with pytest.raises(exceptions.InvalidArgument):
        logs.client.write_log_entries(request=request)
    assert logs.list() == []


def test_partial_success_writes_the_valid_entries(logs: Logs) -> None:
    entries = [{"text_payload": "good"}, {"text_payload": "bad", "log_name": "nope"}]
    with pytest.raises(exceptions.InvalidArgument):
        logs.write(entries)
    assert logs.list() == []
    with pytest.raises(exceptions.InvalidArgument) as err:
        logs.write(entries, partial_success=True)
    assert texts(logs.list()) == ["good"]
    (packed,) = err.value.details
    details = types.WriteLogEntriesPartialErrors.pb()()
    assert packed.Unpack(details)
    assert list(details.log_entry_errors) == [1]


def test_dry_run_validates_without_storing(logs: Logs) -> None:
    logs.write([{"text_payload": "x"}], dry_run=True)
    assert logs.list() == []
    with pytest.raises(exceptions.InvalidArgument):
        logs.write([{"text_payload": "x", "log_name": "nope"}], dry_run=True)


def test_write_entries_from_another_service(logs: Logs) -> None:
    logs.emulator.service("logging").write_entries(
        [
            types.LogEntry(
                log_name=logs.stdout,
                resource=job_resource(),
                text_payload="from a task",
                labels={EXECUTION: "ingest-abc"},
            )
        ]
    )
    (entry,) = logs.list(f'labels."{EXECUTION}"="ingest-abc"')
    assert entry.text_payload == "from a task" and entry.insert_id and entry.timestamp


def test_write_entries_is_safe_from_many_threads(logs: Logs) -> None:
    service = logs.emulator.service("logging")

    def writer(n: int) -> None:
        for i in range(50):
            entry = types.LogEntry(
                log_name=logs.stdout, resource=job_resource(), text_payload=f"{n}-{i}"
            )
            service.write_entries([entry])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = logs.list(page_size=1000)
    assert len(entries) == 400
    assert len({e.insert_id for e in entries}) == 400


class Tail:
    """tail_log_entries consumed on a thread, its entries put on a queue."""

    def __init__(self, logs: Logs, filter: str, **request: Any) -> None:
        request.setdefault("resource_names", [logs.project])
        req = types.TailLogEntriesRequest(filter=filter, **request)
        self.stream = logs.client.tail_log_entries(requests=iter([req]))
        self.entries: queue.Queue[types.LogEntry] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for response in self.stream:
                for entry in response.entries:
                    self.entries.put(entry)
        except BaseException as err:
            self.error = err

    def take(self, n: int) -> list[types.LogEntry]:
        return [self.entries.get(timeout=5) for _ in range(n)]


def test_tail_streams_only_new_matching_entries(seeded: Logs) -> None:
    tail = Tail(seeded, f'severity>=WARNING labels."{EXECUTION}"="ingest-new"')
    new = {EXECUTION: "ingest-new"}
    seeded.write([{"text_payload": "quiet", "severity": "INFO"}], labels=new)
    seeded.write([{"text_payload": "loud", "severity": "ERROR"}], labels=new)
    seeded.write([{"text_payload": "other execution", "severity": "ERROR"}])
    seeded.write(
        [{"text_payload": "other project", "severity": "ERROR"}],
        log_name=f"{seeded.project}-other/logs/app",
        labels=new,
    )
    seeded.write([{"json_payload": {"message": "structured"}, "severity": "WARNING"}], labels=new)
    assert texts(tail.take(2)) == ["loud", "structured"]
    tail.stream.cancel()
    tail.thread.join(timeout=5)
    assert not tail.thread.is_alive()
    assert isinstance(tail.error, exceptions.Cancelled)
    # Nothing else arrived: the backlog (seeded entries) and non-matching entries were skipped.
    assert tail.entries.empty()


def test_tail_rejects_an_invalid_filter_or_window(logs: Logs) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        Tail(logs, "severity>>ERROR")
    with pytest.raises(exceptions.InvalidArgument):
        Tail(logs, "", buffer_window=duration_pb2.Duration(seconds=61))


def test_emulator_stop_ends_open_tails(emulator: Emulator) -> None:
    tail = Tail(Logs(emulator), "")
    emulator.stop()
    tail.thread.join(timeout=5)
    assert not tail.thread.is_alive()


def test_stop_ends_an_open_tail_cleanly_before_the_server_goes(emulator: Emulator) -> None:
    tail = Tail(Logs(emulator), "")
    emulator.stop()
    tail.thread.join(timeout=5)
    # The stream ended with OK: the service released it before the server cancelled calls
    # (which the client would see as UNAVAILABLE or CANCELLED).
    assert not tail.thread.is_alive()
    assert tail.error is None


def test_entries_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        logs = Logs(emu)
        logs.write([{"text_payload": "one"}, {"json_payload": {"message": "two"}}])
        before = logs.list()
    with Emulator(state_dir=state) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        logs.client = clients.logging()
        assert logs.list() == before
        logs.write([{"text_payload": "three"}])
        after = logs.list()
    assert texts(after) == ["one", "two", "three"]
    assert len({e.insert_id for e in after}) == 3


def test_retention_keeps_the_newest_entries(emulator: Emulator) -> None:
    service = emulator.service("logging")
    service.max_entries, service.chunk_size = 3, 1
    logs = Logs(emulator)
    logs.write([{"text_payload": str(i), "timestamp": T0 + timedelta(seconds=i)} for i in range(5)])
    assert texts(logs.list()) == ["2", "3", "4"]


def test_saved_chunks_follow_inserts_and_trims() -> None:
    """dump() re-encodes only changed chunks; what load() reads back is always the list."""
    service = LoggingService(Cloud(None))
    service.max_entries, service.chunk_size = 6, 2

    def entry(second: int) -> types.LogEntry:
        return types.LogEntry(
            log_name="projects/p/logs/app",
            resource={"type": "global"},
            text_payload=str(second),
            timestamp=T0 + timedelta(seconds=second),
        )

    def saved(svc: LoggingService) -> list[str]:
        restored = LoggingService(Cloud(None))
        restored.load(json.loads(json.dumps(svc.dump())))
        return [s.pb.text_payload for s in restored._entries]

    service.write_entries(entry(s) for s in (10, 20, 30))
    assert saved(service) == ["10", "20", "30"]
    service.write_entries([entry(5), entry(40)])  # one lands in the first, saved chunk
    assert saved(service) == ["5", "10", "20", "30", "40"]
    service.write_entries(entry(s) for s in (50, 60, 70))  # 8 entries: oldest chunk dropped
    assert saved(service) == ["20", "30", "40", "50", "60", "70"]
    service.write_entries([entry(25)])
    assert saved(service) == ["20", "25", "30", "40", "50", "60", "70"]
    # A restored service keeps the loaded chunks and goes on from them...
    restored = LoggingService(Cloud(None))
    restored.max_entries, restored.chunk_size = 8, 2
    restored.load(json.loads(json.dumps(service.dump())))
    restored.write_entries([entry(80), entry(15)])
    assert saved(restored) == ["15", "20", "25", "30", "40", "50", "60", "70", "80"]
    # ...or, when it keeps fewer entries, re-encodes the newest it keeps.
    smaller = LoggingService(Cloud(None))
    smaller.max_entries, smaller.chunk_size = 3, 2
    smaller.load(json.loads(json.dumps(restored.dump())))
    assert saved(smaller) == ["60", "70", "80"]
