"""Both sinks through the same tests; the bucket is a real fake-gcs-server."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from govctl.emulator.storage import FakeGcs
from ingestion.sinks import (
    DIGEST_CONTENT_TYPE,
    DirSink,
    GcsSink,
    Sink,
    SinkError,
    open_sink,
)

BUCKET = "digests"
# Retries as in production, only faster.
FAST_RETRY: Retry = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.05).with_timeout(20)


def meta(pushed: str = "2024-01-01T00:00:00Z", **extra: str) -> dict[str, str]:
    return {"org": "o", "repo": "r", "pushedAt": pushed, "sha256": "abc", **extra}


def put(sink: Sink, owner: str, name: str, data: bytes, metadata: dict[str, str]) -> None:
    """``sink.put_digest`` from a file holding ``data``, as the pipeline calls it."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "digest.md"
        source.write_bytes(data)
        sink.put_digest(owner, name, source, metadata)


def gcs_client() -> storage.Client:
    return storage.Client(project="test", credentials=AnonymousCredentials())


@dataclass
class Stored:
    """Reads what a sink stored, without going through the sink."""

    read: Callable[[str], tuple[bytes, str, dict[str, str]] | None]
    names: Callable[[], list[str]]
    plant: Callable[[str, bytes], None]  # put a foreign object/file in the sink


def dir_stored(root: Path) -> Stored:
    def read(name: str) -> tuple[bytes, str, dict[str, str]] | None:
        path = root / name
        if not path.exists():
            return None
        meta_path = path.with_name(path.name + ".meta.json")
        metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return path.read_bytes(), "", metadata

    def names() -> list[str]:
        return sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(".meta.json")
        )

    def plant(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    return Stored(read, names, plant)


def gcs_stored(prefix: str = "") -> Stored:
    bucket = gcs_client().bucket(BUCKET)

    def read(name: str) -> tuple[bytes, str, dict[str, str]] | None:
        blob = bucket.get_blob(prefix + name)
        if blob is None:
            return None
        return blob.download_as_bytes(), blob.content_type or "", dict(blob.metadata or {})

    def names() -> list[str]:
        return sorted(b.name[len(prefix) :] for b in gcs_client().list_blobs(BUCKET))

    def plant(name: str, data: bytes) -> None:
        bucket.blob(prefix + name).upload_from_string(data)

    return Stored(read, names, plant)


@pytest.fixture(params=["dir", "gcs"])
def sink_and_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sink, Stored]]:
    if request.param == "dir":
        root = tmp_path / "sink"
        yield DirSink(root), dir_stored(root)
        return
    fake: FakeGcs = request.getfixturevalue("fake_gcs")
    assert fake.url
    gcs_client().create_bucket(BUCKET)
    yield GcsSink(BUCKET, retry=FAST_RETRY), gcs_stored()


def test_put_list_and_read_back(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, stored = sink_and_store
    sink.check()
    assert sink.list_metadata() == {}

    big = os.urandom(9 * 1024 * 1024)  # over the single-request size: a resumable upload
    put(sink, "alphagov", "notify", b"# notify\n", meta(repo="notify"))
    put(sink, "alphagov", "big.repo", big, meta(repo="big.repo"))
    put(sink, "MoJ", "x_y-z", b"\xe2\x9c\x93 utf-8\n", meta(repo="x_y-z"))

    assert sink.list_metadata() == {
        "alphagov/notify": meta(repo="notify"),
        "alphagov/big.repo": meta(repo="big.repo"),
        "MoJ/x_y-z": meta(repo="x_y-z"),
    }
    notify = stored.read("alphagov/notify.md")
    assert notify is not None
    data, content_type, metadata = notify
    assert data == b"# notify\n"
    assert metadata == meta(repo="notify")
    if isinstance(sink, GcsSink):
        assert content_type == DIGEST_CONTENT_TYPE == "text/markdown; charset=utf-8"
    big_read = stored.read("alphagov/big.repo.md")
    assert big_read is not None and big_read[0] == big


def test_overwrite_and_put_metadata(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, stored = sink_and_store
    sink.check()
    put(sink, "o", "r", b"v1", meta("1"))
    listed = sink.list_metadata()
    assert listed["o/r"]["pushedAt"] == "1"

    put(sink, "o", "r", b"v2", meta("2"))  # overwrite after a listing: precondition ok
    sink.put_metadata("o", "r", meta("3", processedAt="later"))
    record = stored.read("o/r.md")
    assert record is not None
    assert record[0] == b"v2"
    assert record[2] == meta("3", processedAt="later")
    assert sink.list_metadata() == {"o/r": meta("3", processedAt="later")}
    # A second overwrite in the same run uses the generation the first one returned.
    put(sink, "o", "r", b"v3", meta("4"))
    record = stored.read("o/r.md")
    assert record is not None and record[0] == b"v3"


def test_put_metadata_of_a_missing_digest(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, _ = sink_and_store
    sink.check()
    with pytest.raises(SinkError, match="does not exist"):
        sink.put_metadata("o", "missing", meta())


def test_listing_ignores_runs_and_foreign_objects(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, stored = sink_and_store
    sink.check()
    put(sink, "o", "r", b"digest", meta())
    sink.put_report("exec-1", 0, {"processed": 1})
    stored.plant("README.txt", b"not a digest")
    stored.plant("o/notes.txt", b"not a digest")
    stored.plant("a/b/c.md", b"too deep")
    stored.plant("_runs/old/task-0.md", b"a report")
    stored.plant("has space/x.md", b"not a GitHub name")
    assert sink.list_metadata() == {"o/r": meta()}


def test_gcs_listing_leaves_out_reports_and_state(fake_gcs: FakeGcs) -> None:
    """A year of daily reports must not be listed again by every task every day."""
    gcs_client().create_bucket(BUCKET)
    sink = GcsSink(BUCKET, "daily")
    sink.check()
    put(sink, "o", "r", b"digest", meta())
    put(sink, "z", "last", b"digest", meta())
    for day in range(5):
        sink.put_report(f"exec-{day}", 0, {"processed": 1})
    sink.write_json_if("_runs/exec-0/feed.json", [], "")
    sink.update_json("_state/failures.json", lambda _: {"o/x": {}})
    assert sink.list_metadata() == {"o/r": meta(), "z/last": meta()}
    assert sink.listed_objects == 2


def test_create_only_and_conditional_updates(sink_and_store: tuple[Sink, Stored]) -> None:
    """The feed snapshot is created once (the first task wins); a shared state object is
    updated only from the version read, so racing tasks never overwrite each other."""
    sink, _ = sink_and_store
    sink.check()
    assert sink.read_json("_runs/e/feed.json") == (None, "")
    assert sink.write_json_if("_runs/e/feed.json", ["first"], "")
    assert not sink.write_json_if("_runs/e/feed.json", ["second"], "")
    assert sink.read_json("_runs/e/feed.json")[0] == ["first"]

    _, version = sink.read_json("_runs/e/feed.json")
    assert sink.write_json_if("_runs/e/feed.json", ["update"], version)
    assert not sink.write_json_if("_runs/e/feed.json", ["stale"], version)

    def add(n: int) -> Callable[[Any], Any]:
        return lambda current: sorted({*(current or []), n})

    threads = [
        threading.Thread(target=sink.update_json, args=("_state/s.json", add(n))) for n in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sink.read_json("_state/s.json")[0] == list(range(6))


def test_run_report(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, stored = sink_and_store
    sink.check()
    report = {"counts": {"processed": 3, "failed": 1}, "failures": [{"repo": "o/r"}]}
    sink.put_report("govreposcrape-abc12", 2, report)
    sink.put_report("govreposcrape-abc12", 2, report)  # a retried task overwrites
    record = stored.read("_runs/govreposcrape-abc12/task-2.json")
    assert record is not None
    assert json.loads(record[0]) == report
    if isinstance(sink, GcsSink):
        assert record[1] == "application/json"


def test_nothing_but_the_objects_is_left_behind(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, stored = sink_and_store
    sink.check()  # the write probe is removed again
    put(sink, "o", "r", b"digest", meta())
    sink.put_metadata("o", "r", meta("2"))
    sink.put_report("e", 0, {})
    assert stored.names() == ["_runs/e/task-0.json", "o/r.md"]


def test_names_that_could_escape_are_refused(sink_and_store: tuple[Sink, Stored]) -> None:
    sink, _ = sink_and_store
    for owner, name in (("..", "x"), ("o", "../../etc"), ("o", "a/b"), ("", "x")):
        with pytest.raises(ValueError):
            put(sink, owner, name, b"x", meta())
    with pytest.raises(ValueError):
        sink.put_report("../up", 0, {})
    with pytest.raises(TypeError):
        put(sink, "o", "r", b"x", {"size": 3})  # type: ignore[dict-item]


def test_missing_bucket_is_a_sink_error_that_says_what_to_do(fake_gcs: FakeGcs) -> None:
    sink = open_sink("gs://no-such-bucket/some/prefix")
    with pytest.raises(SinkError) as info:
        sink.check()
    assert "gs://no-such-bucket does not exist" in str(info.value)
    assert "gcloud storage buckets create gs://no-such-bucket" in str(info.value)
    with pytest.raises(SinkError):
        sink.list_metadata()


def test_unusable_directory_is_a_sink_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    sink = open_sink(str(tmp_path / "file" / "sink"))
    with pytest.raises(SinkError, match="cannot create the sink directory"):
        sink.check()
    with pytest.raises(SinkError, match="cannot list the sink directory"):
        sink.list_metadata()
    assert open_sink(str(tmp_path / "not-yet")).list_metadata() == {}


def test_directory_digest_without_metadata_counts_as_absent(tmp_path: Path) -> None:
    sink = DirSink(tmp_path)
    put(sink, "o", "a", b"a", meta())
    put(sink, "o", "b", b"b", meta())
    (tmp_path / "o" / "b.md.meta.json").unlink()  # as if stopped between the two renames
    (tmp_path / "o" / "c.md.meta.json").write_text("{}")  # metadata without a digest
    (tmp_path / "o" / "a.md.tmp").write_text("junk")
    assert sink.list_metadata() == {"o/a": meta()}
    mode = (tmp_path / "o" / "a.md").stat().st_mode & 0o777
    assert mode == 0o644


def test_prefix_keeps_objects_apart(fake_gcs: FakeGcs) -> None:
    gcs_client().create_bucket(BUCKET)
    sink = open_sink(f"gs://{BUCKET}/daily/")
    assert isinstance(sink, GcsSink)
    assert sink.url == f"gs://{BUCKET}/daily"
    sink.check()
    put(sink, "o", "r", b"digest", meta())
    sink.put_report("e", 1, {})
    gcs_stored().plant("o/other.md", b"outside the prefix")
    assert sink.list_metadata() == {"o/r": meta()}
    assert gcs_stored().names() == ["daily/_runs/e/task-1.json", "daily/o/r.md", "o/other.md"]


def test_open_sink_parses_specs(tmp_path: Path) -> None:
    gcs = open_sink("gs://bucket")
    assert isinstance(gcs, GcsSink) and gcs.prefix == "" and gcs.url == "gs://bucket"
    nested = open_sink("gs://bucket/a/b")
    assert isinstance(nested, GcsSink) and nested.prefix == "a/b/"
    local = open_sink(str(tmp_path / "out"))
    assert isinstance(local, DirSink) and local.url == str(tmp_path / "out")
    with pytest.raises(SinkError):
        open_sink("gs://")


# --- transient failures ------------------------------------------------------------------


@dataclass
class Rule:
    """Answer 503 to the next ``count`` requests that ``matches``; ``lost`` forwards first."""

    matches: Callable[[str, str], bool]
    count: int
    lost: bool = False
    hits: int = field(default=0)


class FlakyProxy:
    """A loopback HTTP proxy in front of fake-gcs-server that fails chosen requests."""

    def __init__(self, upstream: str, rules: list[Rule]) -> None:
        self.rules = rules
        self.upstream_statuses: list[int] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                rule = outer.take(self.command, self.path)
                if rule is not None and not rule.lost:
                    return self._reply(503, {}, b'{"error": {"code": 503}}')
                status, headers, data = forward(upstream, self.command, self.path, self, body)
                outer.upstream_statuses.append(status)
                if rule is not None:  # the change landed, the client never hears of it
                    return self._reply(503, {}, b'{"error": {"code": 503}}')
                return self._reply(status, headers, data)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def take(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.hits < rule.count and rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def forward(
    upstream: str,
    method: str,
    path: str,
    handler: BaseHTTPRequestHandler,
    body: bytes | None,
) -> tuple[int, dict[str, str], bytes]:
    headers = {
        k: v
        for k, v in handler.headers.items()
        if k.lower() not in ("host", "content-length", "connection", "accept-encoding")
    }
    request = urllib.request.Request(upstream + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def is_upload(method: str, path: str) -> bool:
    return method in ("POST", "PUT") and path.startswith("/upload/")


def is_listing(method: str, path: str) -> bool:
    return method == "GET" and path.split("?")[0].endswith(f"/b/{BUCKET}/o")


def is_patch(method: str, path: str) -> bool:
    return method == "PATCH"


def test_503s_are_retried_and_nothing_is_lost(
    fake_gcs: FakeGcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcs_client().create_bucket(BUCKET)
    seeded = GcsSink(BUCKET, retry=FAST_RETRY)
    for i in range(5):  # existing digests: overwritten below under generation preconditions
        put(seeded, "org", f"repo{i}", b"old", meta("old"))

    rules = [Rule(is_listing, 2), Rule(is_upload, 1)]
    proxy = FlakyProxy(fake_gcs.url, rules)
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        sink = GcsSink(BUCKET, retry=FAST_RETRY)
        sink.check()
        assert set(sink.list_metadata()) == {f"org/repo{i}" for i in range(5)}
        rules += [
            Rule(is_upload, 3),
            # Stored, but the client sees 503: its retry meets its own generation (412).
            Rule(is_upload, 2, lost=True),
            Rule(is_patch, 2),
            Rule(is_patch, 1, lost=True),
        ]
        expected: dict[str, bytes] = {}
        for i in range(12):
            data = f"# repo{i}\n".encode() * (i + 1)
            put(sink, "org", f"repo{i}", data, meta(str(i)))
            expected[f"org/repo{i}.md"] = data
        for i in range(3):
            sink.put_metadata("org", f"repo{i}", meta(f"patched{i}"))
        sink.put_report("exec", 0, {"ok": True})
    finally:
        proxy.close()

    assert all(rule.hits == rule.count for rule in rules), [(r.count, r.hits) for r in rules]
    assert proxy.upstream_statuses.count(412) == 2  # both lost uploads were reconciled
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.url)
    stored = gcs_stored()
    assert stored.names() == sorted([*expected, "_runs/exec/task-0.json"])
    for name, data in expected.items():
        record = stored.read(name)
        assert record is not None and record[0] == data, name
        assert record[1] == DIGEST_CONTENT_TYPE
        i = int(name.removeprefix("org/repo").removesuffix(".md"))
        assert record[2] == meta(f"patched{i}" if i < 3 else str(i))


def test_a_bucket_that_keeps_failing_is_a_sink_error(
    fake_gcs: FakeGcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcs_client().create_bucket(BUCKET)
    proxy = FlakyProxy(fake_gcs.url, [Rule(lambda m, p: True, 10**6)])
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        retry = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.02).with_timeout(0.5)
        sink = GcsSink(BUCKET, retry=retry)
        with pytest.raises(SinkError, match="kept failing"):
            put(sink, "o", "r", b"x", meta())
    finally:
        proxy.close()
