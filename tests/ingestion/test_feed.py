"""The feed: every rejected-entry kind, duplicates, limit, order, and the HTTP download."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ingestion import feed as feed_module
from ingestion.feed import FeedError, Repo, check_url, credentials_in, load_feed, parse_entries


def entry(owner: Any = "alphagov", name: Any = "repo", url: Any = None, **extra: Any) -> dict:
    if url is None:
        url = f"https://github.com/{owner}/{name}"
    return {"owner": owner, "name": name, "url": url, **extra}


def write_feed(tmp_path: Path, entries: list[Any]) -> str:
    path = tmp_path / "repos.json"
    path.write_text(json.dumps(entries))
    return str(path)


def test_real_schema_entry_is_accepted(tmp_path: Path) -> None:
    # The shape xgov-opensource-repo-scraper publishes (camelCase, license object, nulls).
    real = {
        "owner": "wmfs",
        "name": "chimp",
        "url": "https://github.com/wmfs/chimp",
        "description": None,
        "archived": False,
        "license": {"key": "gpl-3.0", "name": "GNU General Public License v3.0"},
        "stargazersCount": 8,
        "language": "Python",
        "forksCount": 2,
        "openIssuesCount": 0,
        "createdAt": "2016-05-03T10:00:00Z",
        "updatedAt": "2024-01-02T10:00:00Z",
        "pushedAt": "2024-01-01T09:30:00Z",
        "size": 2048,
    }
    result = load_feed(write_feed(tmp_path, [real]))
    assert result.repos == [
        Repo("wmfs", "chimp", "https://github.com/wmfs/chimp", "2024-01-01T09:30:00Z", 2048)
    ]
    assert result.rejected == [] and result.duplicates == 0
    assert result.repos[0].key == "wmfs/chimp"


def test_absent_pushed_at_and_size_default() -> None:
    (repo,) = parse_entries([entry(pushedAt=None, size="big")]).repos
    assert repo.pushed_at == "" and repo.size_kb == 0


BAD_ENTRIES: list[tuple[Any, str]] = [
    ("not an object", "not_an_object"),
    ([1, 2], "not_an_object"),
    ({"name": "r", "url": "https://github.com/o/r"}, "missing_field"),
    ({"owner": "o", "url": "https://github.com/o/r"}, "missing_field"),
    ({"owner": "o", "name": "r"}, "missing_field"),
    (entry(name=""), "missing_field"),
    (entry(owner=7), "missing_field"),
    (entry(name="..", url="https://github.com/o/x"), "bad_name"),
    (entry(name=".", url="https://github.com/o/x"), "bad_name"),
    (entry(name="a/b", url="https://github.com/o/x"), "bad_name"),
    (entry(owner="../etc", url="https://github.com/o/x"), "bad_name"),
    (entry(name="evil\nname", url="https://github.com/o/x"), "bad_name"),
    (entry(name="tab\tname", url="https://github.com/o/x"), "bad_name"),
    (entry(name="x" * 101, url="https://github.com/o/x"), "bad_name"),
    (entry(name="naïve", url="https://github.com/o/x"), "bad_name"),
    (entry(url="https://gitlab.com/o/r"), "host_not_allowed"),
    (entry(url="https://github.com.evil.example/o/r"), "host_not_allowed"),
    (entry(url="https://www.github.com/o/r"), "host_not_allowed"),
    (entry(url="https://github.com:8443/o/r"), "host_not_allowed"),
    (entry(url="ext::sh -c touch% /tmp/pwned"), "bad_url"),  # spaces: refused before parsing
    (entry(url="ext::sh%20-c%20id"), "unsafe_url"),
    (entry(url="fd::3"), "unsafe_url"),
    (entry(url="https::github.com/o/r"), "unsafe_url"),
    (entry(url="-uupload-pack=touch /tmp/pwned"), "bad_url"),
    (entry(url="--upload-pack=touch"), "unsafe_url"),
    (entry(url="file:///etc/passwd"), "unsafe_url"),
    (entry(url="/srv/git/repo"), "unsafe_url"),
    (entry(url="./relative/repo"), "unsafe_url"),
    (entry(url="ftp://github.com/o/r"), "bad_url"),
    (entry(url="ssh://github.com/o/r"), "bad_url"),
    (entry(url="git@github.com:o/r.git"), "bad_url"),
    (entry(url="https://user:token@github.com/o/r"), "bad_url"),
    (entry(url="https://github.com"), "bad_url"),
    (entry(url="https://github.com:notaport/o/r"), "bad_url"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_ENTRIES, ids=[str(e) for e, _ in BAD_ENTRIES])
def test_rejections(raw: Any, reason: str) -> None:
    good = entry(name="good")
    result = parse_entries([good, raw])
    assert [r.key for r in result.repos] == ["alphagov/good"]
    (rejection,) = result.rejected
    assert rejection.reason == reason, rejection
    assert rejection.detail
    assert rejection.entry == "#1" or "/" in rejection.entry


def test_rejection_names_the_entry_and_value() -> None:
    (rejection,) = parse_entries([entry(url="fd::3")]).rejected
    assert rejection.entry == "alphagov/repo"
    assert "fd::3" in rejection.detail
    (unnamed,) = parse_entries([None]).rejected
    assert unnamed.entry == "#0"
    (control,) = parse_entries([entry(name="a\x1bb")]).rejected
    assert "\x1b" not in control.entry  # escaped, so a log line cannot be forged


def test_allowed_hosts_with_ports() -> None:
    allow = ("github.com", "127.0.0.1:9418", "LocalHost:8080")
    ok = [
        "https://github.com/o/r",
        "https://GitHub.com/o/r.git",
        "http://github.com/o/r",
        "git://github.com/o/r",
        "https://github.com:443/o/r",
        "git://127.0.0.1:9418/o/r",
        "http://localhost:8080/o/r",
    ]
    for url in ok:
        assert check_url(url, allow_hosts=allow, allow_local=False) is None, url
    refused = ["git://127.0.0.1:9419/o/r", "https://127.0.0.1/o/r", "http://localhost/o/r"]
    for url in refused:
        problem = check_url(url, allow_hosts=allow, allow_local=False)
        assert problem is not None and problem[0] == "host_not_allowed", url


def test_local_urls_with_allow_local() -> None:
    for url in ("/srv/git/repo", "file:///srv/git/repo", "relative/repo"):
        assert check_url(url, allow_hosts=(), allow_local=True) is None
    # Options and transport helpers stay refused even then.
    # "::" anywhere is refused, IPv6 literals included: git reads "<helper>::" as a transport.
    for url in ("-uupload-pack=x", "ext::sh%20-c%20id", "fd::3", "http://[::1]/o/r"):
        problem = check_url(url, allow_hosts=(), allow_local=True)
        assert problem is not None and problem[0] == "unsafe_url", url


def test_duplicates_are_dropped_case_insensitively_keeping_the_first() -> None:
    result = parse_entries(
        [
            entry("o", "a", pushedAt="1"),
            entry("O", "A", url="https://github.com/O/A", pushedAt="2"),
            entry("o", "b"),
            entry("o", "a", pushedAt="3"),
        ]
    )
    assert [(r.key, r.pushed_at) for r in result.repos] == [("o/a", "1"), ("o/b", "")]
    assert result.duplicates == 2


def test_a_rejected_entry_does_not_shadow_a_later_valid_one() -> None:
    result = parse_entries([entry("o", "a", url="fd::3"), entry("o", "a")])
    assert [r.key for r in result.repos] == ["o/a"]
    assert result.duplicates == 0 and len(result.rejected) == 1


def test_limit_counts_valid_entries_only_and_order_is_the_feeds() -> None:
    raw = [
        entry("o", "z"),
        entry("o", "bad", url="ftp://x/y"),
        entry("o", "z"),  # duplicate: not counted
        entry("o", "a"),
        entry("o", "m"),
        entry("o", "c"),
    ]
    result = parse_entries(raw, limit=3)
    assert [r.name for r in result.repos] == ["z", "a", "m"]
    assert len(result.rejected) == 1 and result.duplicates == 1
    assert parse_entries(raw, limit=0).repos == []
    assert parse_entries(raw) == parse_entries(raw)


def test_local_feed_errors(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="cannot read feed file"):
        load_feed(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FeedError, match="not valid JSON"):
        load_feed(str(tmp_path / "bad.json"))
    (tmp_path / "obj.json").write_text('{"repos": []}')
    with pytest.raises(FeedError, match="expected a list"):
        load_feed(str(tmp_path / "obj.json"))
    (tmp_path / "ok.json").write_text(json.dumps([entry()]))
    assert len(load_feed(f"file://{tmp_path / 'ok.json'}").repos) == 1


class FlakyFeed:
    """A loopback HTTP server answering 503 ``failures`` times, then the feed."""

    def __init__(self, body: bytes, failures: int, status: int = 503) -> None:
        self.body = body
        self.failures = failures
        self.status = status  # what the first ``failures`` requests get
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if outer.requests <= outer.failures:
                    self.send_response(outer.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repos.json"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "BACKOFF_FACTOR", 0.01)


@pytest.fixture
def flaky() -> Iterator[FlakyFeed]:
    server = FlakyFeed(json.dumps([entry("o", "a"), entry("o", "b")]).encode(), failures=2)
    yield server
    server.close()


def test_http_feed_is_retried_after_503(flaky: FlakyFeed, fast_backoff: None) -> None:
    result = load_feed(flaky.url, retries=3, timeout=5)
    assert [r.key for r in result.repos] == ["o/a", "o/b"]
    assert flaky.requests == 3


def test_http_feed_that_keeps_failing_is_a_feed_error(flaky: FlakyFeed, fast_backoff: None) -> None:
    flaky.failures = 10**6
    with pytest.raises(FeedError, match="after 2 retries") as info:
        load_feed(flaky.url, retries=2, timeout=5)
    assert "503" in str(info.value)
    assert flaky.requests == 3


def test_http_feed_that_never_answers_times_out_fast(fast_backoff: None) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections (the kernel does), never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/repos.json"
        started = time.monotonic()
        with pytest.raises(FeedError, match="cannot fetch feed"):
            load_feed(url, retries=1, timeout=0.3)
    assert time.monotonic() - started < 5


def test_http_feed_404_is_a_feed_error_at_once(flaky: FlakyFeed) -> None:
    """A wrong URL is not a transient failure: one request, and the error names the status."""
    flaky.failures, flaky.status = 10**6, 404
    with pytest.raises(FeedError, match="answered HTTP 404"):
        load_feed(flaky.url, retries=3, timeout=5)
    assert flaky.requests == 1


def test_http_feed_that_is_not_json(flaky: FlakyFeed) -> None:
    flaky.failures = 0
    flaky.body = b"<html>not json</html>"
    with pytest.raises(FeedError, match="not valid JSON"):
        load_feed(flaky.url, retries=1, timeout=5)


def test_an_owner_starting_with_underscore_is_rejected() -> None:
    """No GitHub owner starts with "_"; the sink keeps those names for the job's own objects."""
    feed = parse_entries([{"owner": "_runs", "name": "x", "url": "https://github.com/_runs/x"}])
    assert feed.repos == [] and [r.reason for r in feed.rejected] == ["bad_name"]


class TrickleFeed:
    """A loopback HTTP server that sends its body one byte every ``every`` seconds (each read
    gets something, so no read timeout ever fires), until told to stop."""

    def __init__(self, every: float = 0.2) -> None:
        self.done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                try:
                    while not outer.done.wait(every):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the client hung up

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repos.json"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickle() -> Iterator[TrickleFeed]:
    server = TrickleFeed()
    yield server
    server.close()


def test_a_trickling_feed_fails_at_the_deadline(trickle: TrickleFeed) -> None:
    started = time.monotonic()
    with pytest.raises(FeedError) as info:
        load_feed(trickle.url, timeout=1, deadline=1.5)
    took = time.monotonic() - started
    assert 1.5 <= took < 4, took
    assert trickle.url in str(info.value) and "1.5 s deadline" in str(info.value)


def test_a_trickling_feed_fails_the_task_with_one_line(
    trickle: TrickleFeed, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "ingestion", "--feed", trickle.url, "--sink",
            str(tmp_path / "out"), "--feed-deadline", "2",
        ],
        capture_output=True, text=True, timeout=60, cwd=root,
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert proc.returncode == 1
    [critical] = [
        r for r in map(json.loads, proc.stdout.splitlines()) if r["severity"] == "CRITICAL"
    ]
    assert trickle.url in critical["message"] and "2 s deadline" in critical["message"]
    [report] = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("_runs/*/task-0.json")]
    assert report["fatal"].startswith("feed unreadable") and "deadline" in report["fatal"]


@pytest.mark.parametrize(
    "url",
    ["https://user:TOKEN123@example.org/repos.json", "https://TOKEN123@example.org/repos.json"],
)
def test_credentials_in_a_feed_url_are_found_and_hidden(url: str) -> None:
    shown = credentials_in(url)
    assert shown == "https://***@example.org/repos.json"
    assert credentials_in("https://example.org/repos.json") is None
    assert credentials_in("/data/repos@home.json") is None  # a path, not a URL
