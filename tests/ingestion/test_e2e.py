"""The whole job against a real ``git daemon`` and a directory or ``fake-gcs-server`` sink.

Most runs are in-process (``runner.run`` with a captured logger: the digest workers' fork
server stays warm between runs); what is a property of the process — exit status, signals,
what reaches stdout — runs ``python -m ingestion`` as a subprocess.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from govctl.emulator.storage import FakeGcs
from ingestion.cli import parse_options
from ingestion.digest import DigestSettings
from ingestion.feed import parse_entries
from ingestion.logs import configured
from ingestion.runner import run
from tests.support.git import GitServer, git, head, make_repo

PUSHED = "2024-01-01T00:00:00Z"
REPO_ROOT = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------------


def entry(server: GitServer, rel: str, pushed: str = PUSHED, **extra: Any) -> dict[str, Any]:
    owner, name = rel.split("/")
    return {"owner": owner, "name": name, "url": server.url(rel), "pushedAt": pushed, **extra}


def write_feed(path: Path, entries: list[Any]) -> Path:
    path.write_text(json.dumps(entries))
    return path


class Job:
    """Runs the job in-process on a feed of ``entries`` and keeps what it logged.

    The sink is ``tmp_path / "out"`` unless given.
    """

    def __init__(
        self, server: GitServer, tmp_path: Path, entries: list[Any], sink: str | None = None
    ) -> None:
        self.feed = write_feed(tmp_path / "feed.json", entries)
        self.out = tmp_path / "out"
        self.sink = sink or str(self.out)
        self.server = server
        self.records: list[dict[str, Any]] = []

    def write_feed(self, entries: list[Any]) -> None:
        write_feed(self.feed, entries)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> int:
        argv = ["--feed", str(self.feed), "--sink", self.sink, "--allow-host", self.server.host]
        environ = {"CLOUD_RUN_EXECUTION": f"exec-{time.monotonic_ns()}", **(env or {})}
        options = parse_options([*argv, *args], environ)
        out = io.StringIO()
        with configured(out, level="DEBUG", human=False, fields={"task_index": options.task_index}):
            code = run(options, environ=environ)
        self.records = [json.loads(line) for line in out.getvalue().splitlines()]
        return code

    def report(self) -> dict[str, Any]:
        [line] = [r for r in self.records if r["message"].startswith("finished")]
        return line

    def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = self.report()["counts"]
        return counts

    def messages(self, severity: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["severity"] == severity]


def stored(sink: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """``owner/name`` → (digest text, metadata) of a directory sink."""
    found = {}
    for md in sink.glob("*/*.md"):
        meta = json.loads(md.with_name(md.name + ".meta.json").read_text())
        found[f"{md.parent.name}/{md.stem}"] = (md.read_text(), meta)
    return found


def reports(sink: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(sink.glob("_runs/*/task-*.json"))]


def every_byte(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a git host that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def three_repos(git_server: GitServer) -> list[str]:
    make_repo(git_server.root / "alpha/one", {"README.md": "# One\n", "src/app.py": "print(1)\n"})
    make_repo(git_server.root / "alpha/two", {"main.go": "package main\n"})
    make_repo(git_server.root / "beta/three", {"docs/index.md": "three\n"})
    return ["alpha/one", "alpha/two", "beta/three"]


# -- happy path ------------------------------------------------------------------------------


def test_directory_sink_happy_path(
    git_server: GitServer, three_repos: list[str], tmp_path: Path
) -> None:
    job = Job(git_server, tmp_path, [entry(git_server, r) for r in three_repos])
    assert job(env={"CLOUD_RUN_EXECUTION": "exec-1"}) == 0

    digests = stored(tmp_path / "out")
    assert sorted(digests) == three_repos
    text, meta = digests["alpha/one"]
    assert "Repository: alpha/one" in text and "FILE: src/app.py" in text and "print(1)" in text
    assert set(meta) == {
        "org", "repo", "url", "pushedAt", "processedAt", "commit", "size", "sha256",
        "ingest_version",
    }  # fmt: skip
    assert meta["org"] == "alpha" and meta["repo"] == "one"
    assert meta["url"] == git_server.url("alpha/one") and meta["pushedAt"] == PUSHED
    assert meta["commit"] == head(git_server.root / "alpha/one")
    assert meta["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert meta["size"] == str(len(text.encode()))
    assert meta["processedAt"].endswith("Z")
    assert git_server.upload_packs() == 3

    [report] = reports(tmp_path / "out")
    assert report["execution"] == "exec-1"
    assert (report["task_index"], report["task_count"]) == (0, 1)
    assert report["counts"]["processed"] == report["counts"]["rewritten"] == 3
    assert report["counts"]["failed"] == 0 and report["failures"] == []
    assert report["bytes"]["written"] == sum(len(t.encode()) for t, _ in digests.values())
    assert report["settings"]["max_file_size"] == 524288
    assert report["durations_s"]["total"] > 0
    ingested = [r for r in job.records if r["message"].startswith("ingested")]
    assert {r["repo"] for r in ingested} == set(three_repos)
    assert all(r["duration_s"] > 0 and r["severity"] == "INFO" for r in ingested)


def test_gcs_sink_happy_path_and_incremental(
    git_server: GitServer,
    three_repos: list[str],
    tmp_path: Path,
    fake_gcs: FakeGcs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = storage.Client(project="p", credentials=AnonymousCredentials())
    client.create_bucket("digests")
    # The job finds the emulator through its options (resolved once, by the CLI), not by
    # looking at this process's environment deep inside the sink.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    emulator = {"STORAGE_EMULATOR_HOST": fake_gcs.url}
    job = Job(
        git_server, tmp_path, [entry(git_server, r) for r in three_repos], sink="gs://digests/daily"
    )
    assert job(env={"CLOUD_RUN_EXECUTION": "exec-gcs", **emulator}) == 0
    [start] = [r for r in job.records if r["message"] == "ingestion starting"]
    assert start["storage_endpoint"] == fake_gcs.url

    blobs = {b.name: b for b in client.list_blobs("digests")}
    [snapshot] = [name for name in blobs if name.startswith("daily/_runs/feeds/")]
    assert re.fullmatch(r"daily/_runs/feeds/[0-9a-f]{64}\.json\.gz", snapshot)
    assert sorted(set(blobs) - {snapshot}) == [
        "daily/_runs/exec-gcs/feed-ref.json",
        "daily/_runs/exec-gcs/task-0.json",
        "daily/_state/last-feed.json",
        "daily/_state/summary.json",
        "daily/alpha/one.md",
        "daily/alpha/two.md",
        "daily/beta/three.md",
    ]
    blob = blobs["daily/alpha/two.md"]
    assert blob.content_type == "text/markdown; charset=utf-8"
    data = blob.download_as_bytes()
    assert b"package main" in data
    assert blob.metadata["sha256"] == hashlib.sha256(data).hexdigest()
    assert blob.metadata["commit"] == head(git_server.root / "alpha/two")
    report = json.loads(blobs["daily/_runs/exec-gcs/task-0.json"].download_as_bytes())
    assert report["counts"]["rewritten"] == 3

    assert job(env=emulator) == 0
    assert git_server.upload_packs() == 3
    assert job.counts()["unchanged"] == 3 and job.counts()["processed"] == 0


def test_missing_bucket_is_fatal_with_one_clear_line(
    git_server: GitServer, three_repos: list[str], tmp_path: Path, fake_gcs: FakeGcs
) -> None:
    job = Job(
        git_server,
        tmp_path,
        [entry(git_server, r) for r in three_repos],
        sink="gs://no-such-bucket",
    )
    assert job() == 1
    [critical] = job.messages("CRITICAL")
    assert (
        critical["message"].startswith("sink unusable") and "no-such-bucket" in critical["message"]
    )
    assert git_server.upload_packs() == 0


# -- incremental -----------------------------------------------------------------------------


@pytest.fixture
def ingested(
    git_server: GitServer, three_repos: list[str], tmp_path: Path
) -> tuple[Job, list[dict[str, Any]]]:
    """The three repositories ingested once into a directory sink, and their feed entries."""
    entries = [entry(git_server, r) for r in three_repos]
    job = Job(git_server, tmp_path, entries)
    assert job() == 0
    return job, entries


def test_second_run_clones_nothing_and_one_change_clones_one(
    git_server: GitServer, ingested: tuple[Job, list[dict[str, Any]]]
) -> None:
    job, entries = ingested
    out = job.out
    first = stored(out)
    assert git_server.upload_packs() == 3

    assert job() == 0
    assert git_server.upload_packs() == 3  # no clone, no fetch: decided from the listing
    assert job.counts()["unchanged"] == 3 and job.counts()["to_do"] == 0
    assert stored(out) == first

    make_repo(git_server.root / "alpha/two", {"main.go": "package main // v2\n"}, message="v2")
    entries[1]["pushedAt"] = "2024-02-02T00:00:00Z"
    job.write_feed(entries)
    assert job() == 0
    assert git_server.upload_packs() == 4
    assert git_server.upload_packs("alpha/two") == 2
    assert job.counts()["rewritten"] == 1 and job.counts()["unchanged"] == 2
    after = stored(out)
    assert "v2" in after["alpha/two"][0]
    assert after["alpha/two"][1]["pushedAt"] == "2024-02-02T00:00:00Z"
    assert after["alpha/one"] == first["alpha/one"]


def test_same_content_refreshes_metadata_only(
    ingested: tuple[Job, list[dict[str, Any]]],
) -> None:
    job, entries = ingested
    out = job.out
    md = out / "beta/three.md"
    inode = md.stat().st_ino

    entries[2]["pushedAt"] = "2024-03-03T00:00:00Z"  # pushed (e.g. a branch), same default head
    job.write_feed(entries)
    assert job() == 0
    assert job.counts()["metadata_refreshed"] == 1 and job.counts()["rewritten"] == 0
    assert md.stat().st_ino == inode  # the digest itself was not rewritten
    assert stored(out)["beta/three"][1]["pushedAt"] == "2024-03-03T00:00:00Z"

    assert job() == 0
    assert job.counts()["unchanged"] == 3


def test_force_and_settings_change_redo_everything(
    git_server: GitServer, three_repos: list[str], tmp_path: Path
) -> None:
    job = Job(git_server, tmp_path, [entry(git_server, r) for r in three_repos])
    assert job() == 0
    assert git_server.upload_packs() == 3

    assert job("--force") == 0
    assert git_server.upload_packs() == 6
    assert job.counts()["processed"] == 3

    assert job("--max-file-size", "1000") == 0
    assert git_server.upload_packs() == 9
    assert {r["why"] for r in job.records if r["message"].startswith("ingested")} == {"settings"}
    ingest_versions = {meta["ingest_version"] for _, meta in stored(tmp_path / "out").values()}
    assert len(ingest_versions) == 1

    assert job("--max-file-size", "1000") == 0
    assert git_server.upload_packs() == 9


def test_dry_run_writes_nothing(
    git_server: GitServer, three_repos: list[str], tmp_path: Path
) -> None:
    entries = [entry(git_server, r) for r in three_repos]
    entries.append({"owner": "x", "name": "bad/name", "url": git_server.url("x/y")})
    job = Job(git_server, tmp_path, entries)
    out = job.out
    assert job("--dry-run") == 0
    assert not out.exists()
    assert git_server.upload_packs() == 0
    [summary] = [r for r in job.records if r["message"].startswith("dry run")]
    assert summary["to_do"] == 3 and summary["unchanged"] == 0
    assert summary["rejected_by_reason"] == {"bad_name": 1}
    assert {r["repo"] for r in job.records if r["message"].startswith("would ingest")} == set(
        three_repos
    )

    assert job() == 0
    before = every_byte(out)
    assert job("--dry-run", "--force") == 0
    [summary] = [r for r in job.records if r["message"].startswith("dry run")]
    assert summary["to_do"] == 3 and summary["why"] == {"forced": 3}
    assert job("--dry-run") == 0
    [summary] = [r for r in job.records if r["message"].startswith("dry run")]
    assert summary["to_do"] == 0 and summary["unchanged"] == 3
    assert every_byte(out) == before
    assert git_server.upload_packs() == 3


# -- the feed --------------------------------------------------------------------------------


def test_rejected_entries_are_logged_counted_and_never_cloned(
    git_server: GitServer, tmp_path: Path
) -> None:
    make_repo(git_server.root / "org/good", {"a.txt": "a\n"})
    make_repo(git_server.root / "org/victim", {"a.txt": "a\n"})
    victim = git_server.url("org/victim")
    entries: list[Any] = [
        entry(git_server, "org/good"),
        {"owner": "org", "name": "nourl"},
        {"owner": "org", "url": victim},
        {"owner": "org", "name": "..", "url": victim},
        {"owner": "o\x07rg", "name": "victim", "url": victim},
        {"owner": "org", "name": "opt", "url": f"--upload-pack=touch {tmp_path}/pwned"},
        {"owner": "org", "name": "opt2", "url": "-uupload-pack=id"},
        {"owner": "org", "name": "ext", "url": "ext::sh -c id"},
        {"owner": "org", "name": "fd", "url": "fd::3"},
        {"owner": "org", "name": "host", "url": victim.replace("127.0.0.1", "localhost")},
        {"owner": "org", "name": "local", "url": (git_server.root / "org/victim").as_uri()},
        {"owner": "org", "name": "path", "url": str(git_server.root / "org/victim")},
        "not an object",
        entry(git_server, "org/good"),  # a duplicate
    ]
    job = Job(git_server, tmp_path, entries)
    assert job() == 0
    assert git_server.upload_packs() == 1 and git_server.upload_packs("org/victim") == 0
    assert not (tmp_path / "pwned").exists()
    warnings = [r for r in job.messages("WARNING") if r["message"].startswith("rejected")]
    assert len(warnings) == 12
    assert all(r["reason"] and r["detail"] for r in warnings)
    counts = job.counts()
    assert counts["rejected"] == 12 and counts["duplicates"] == 1 and counts["processed"] == 1
    by_reason = counts["rejected_by_reason"]
    assert by_reason["missing_field"] == 2
    assert by_reason["bad_name"] == 2
    assert by_reason["host_not_allowed"] == 1
    assert by_reason["not_an_object"] == 1
    assert by_reason.get("unsafe_url", 0) + by_reason.get("bad_url", 0) == 6
    [report] = reports(tmp_path / "out")
    assert report["counts"]["rejected_by_reason"] == by_reason


def test_limit_and_shards_cover_the_feed_once(git_server: GitServer, tmp_path: Path) -> None:
    names = [f"org/r{i}" for i in range(5)]
    for rel in names:
        make_repo(git_server.root / rel, {"f.txt": rel})
    job = Job(git_server, tmp_path, [entry(git_server, r) for r in names])
    out = job.out
    assert job("--limit", "4", "--dry-run") == 0
    [summary] = [r for r in job.records if r["message"].startswith("dry run")]
    assert summary["to_do"] == 4
    planned = []  # --limit counts repositories in total, before the split
    for index in range(2):
        assert job("--limit", "4", "--tasks", "2", "--task-index", str(index), "--dry-run") == 0
        planned += [r["repo"] for r in job.records if r["message"].startswith("would ingest")]
    assert sorted(planned) == names[:4]
    for index in range(3):
        assert job("--batch-size", "3", "--offset", str(index)) == 0
    assert sorted(stored(out)) == names
    assert git_server.upload_packs() == 5
    assert sorted(r["task_index"] for r in reports(out)) == [0, 1, 2]


def test_tasks_of_one_execution_shard_the_same_feed(git_server: GitServer, tmp_path: Path) -> None:
    """The feed is republished between the starts of two tasks: both use the first one."""
    names = [f"org/r{i}" for i in range(4)]
    for rel in names:
        make_repo(git_server.root / rel, {"f.txt": rel})
    job = Job(git_server, tmp_path, [entry(git_server, r) for r in names])
    same = {"CLOUD_RUN_EXECUTION": "exec-snap", "CLOUD_RUN_TASK_COUNT": "2"}
    assert job(env={**same, "CLOUD_RUN_TASK_INDEX": "0"}) == 0
    first = job.counts()["in_shard"]
    job.write_feed([entry(git_server, r) for r in names[:2]])  # republished, shorter
    assert job(env={**same, "CLOUD_RUN_TASK_INDEX": "1"}) == 0
    assert job.counts()["in_shard"] == 4 - first and job.counts()["feed_entries"] == 4
    assert sorted(stored(job.out)) == names
    assert [r["feed_source"] for r in job.records if "feed_source" in r] == ["snapshot"]
    ref = json.loads((job.out / "_runs" / "exec-snap" / "feed-ref.json").read_text())
    snapshot = json.loads(gzip.decompress((job.out / ref["snapshot"]).read_bytes()))
    assert [f"{e['owner']}/{e['name']}" for e in snapshot] == names
    assert [r["feed"]["sha256"] for r in reports(job.out)] == [ref["sha256"]] * 2


def test_an_unchanged_feed_is_stored_once(git_server: GitServer, tmp_path: Path) -> None:
    """Each execution names its feed; the same content is one snapshot, however many use it."""
    make_repo(git_server.root / "org/r0", {"f.txt": "0"})
    job = Job(git_server, tmp_path, [entry(git_server, "org/r0")])
    for _ in range(3):
        assert job() == 0
    snapshots = list((job.out / "_runs" / "feeds").iterdir())
    assert len(snapshots) == 1 and len(list(job.out.glob("_runs/*/feed-ref.json"))) == 3
    job.write_feed([entry(git_server, "org/r0", pushed="2025-01-01T00:00:00Z")])
    assert job() == 0
    assert len(list((job.out / "_runs" / "feeds").iterdir())) == 2


def digests_and_state(root: Path) -> bytes:
    """Every byte of the sink but the run reports, the feed snapshots and the summary (which
    record every run, a refused one too)."""
    return b"".join(
        p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.relative_to(root).parts[0] != "_runs"
        and p.relative_to(root) != Path("_state/summary.json")
    )


def test_an_empty_or_truncated_feed_fails_and_touches_nothing(
    git_server: GitServer, tmp_path: Path
) -> None:
    names = [f"org/r{i}" for i in range(4)]
    for rel in names:
        make_repo(git_server.root / rel, {"f.txt": rel})
    job = Job(git_server, tmp_path, [])
    assert job() == 1
    [error] = [r for r in job.messages("ERROR") if "valid" in r]
    assert (error["valid"], error.get("last_valid")) == (0, None)
    assert "no valid entry" in error["message"] and "--allow-shrink" in error["message"]
    assert digests_and_state(job.out) == b""
    [report] = reports(job.out)  # the refusal is reported, like every other way out
    assert report["fatal"] == error["message"] and report["feed"] is None
    assert not (job.out / "_runs" / "feeds").exists()  # no snapshot of a refused feed

    job.write_feed([entry(git_server, r) for r in names])
    assert job() == 0
    before = digests_and_state(job.out)
    job.write_feed([entry(git_server, names[0])])
    assert job() == 1
    [error] = [r for r in job.messages("ERROR") if "valid" in r]
    assert (error["valid"], error["last_valid"]) == (1, 4)
    assert "1 valid entries" in error["message"] and "4" in error["message"]
    assert digests_and_state(job.out) == before  # no digest, no failures, no last-feed
    assert len(list((job.out / "_runs" / "feeds").iterdir())) == 1
    summary = json.loads((job.out / "_state" / "summary.json").read_text())
    assert summary["last_run"]["outcome"] == "failed"
    assert summary["digests"]["shards"]["0"]["count"] == 4  # as the last listing left it
    job.write_feed([])
    assert job() == 1 and job.messages("ERROR")[0]["last_valid"] == 4

    job.write_feed([entry(git_server, names[0]), entry(git_server, names[1])])
    assert job() == 0  # half of the last run's is still accepted
    job.write_feed([entry(git_server, names[0])])
    assert job("--allow-shrink") == 0
    job.write_feed([])
    assert job(env={"ALLOW_FEED_SHRINK": "1"}) == 0


def test_an_upload_that_lands_after_it_was_abandoned_is_counted_once(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingestion.pipeline
    from ingestion.pipeline import Pipeline
    from ingestion.plan import make_plan
    from ingestion.report import RunReport
    from ingestion.sinks import DirSink

    make_repo(git_server.root / "org/late", {"a.txt": "a\n"})
    uploading = threading.Event()
    release = threading.Event()
    real_put = DirSink._put_digest

    def late_upload(self: DirSink, relative: str, source: Path, metadata: Any) -> None:
        uploading.set()
        release.wait(30)
        real_put(self, relative, source, metadata)

    monkeypatch.setattr(DirSink, "_put_digest", late_upload)
    monkeypatch.setattr(ingestion.pipeline, "STOP_GRACE_S", 0.2)
    feed = parse_entries([entry(git_server, "org/late")], allow_hosts=[git_server.host])
    report = RunReport(execution="e", task_index=0, task_count=1)
    stop = threading.Event()
    threading.Thread(target=lambda: uploading.wait(30) and stop.set(), daemon=True).start()
    workdir = tmp_path / "work"
    workdir.mkdir()
    Pipeline(
        sink=DirSink(tmp_path / "out"),
        settings=DigestSettings(),
        fingerprint="v-test",
        concurrency=1,
        digest_workers=1,
        repo_timeout=30,
        force=False,
        workdir=workdir,
        report=report,
        stop=stop,
    ).run(make_plan(feed.repos, {}, "v-test").to_do)
    assert report.counts()["interrupted"] == 1
    release.set()  # the abandoned upload lands while the report is being written
    deadline = time.monotonic() + 10
    while any(t.name.startswith("repo-") for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    counts = report.counts()
    assert (counts["interrupted"], counts["processed"]) == (1, 0)


# -- failures --------------------------------------------------------------------------------


def run_module(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "ingestion", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stdout.splitlines()]
    for record in records:
        assert record["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert isinstance(record["message"], str) and record["time"].endswith("Z")
    return records


def test_unreachable_repository_exit_status_follows_the_ratio(
    git_server: GitServer, three_repos: list[str], tmp_path: Path
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    entries = [entry(git_server, r) for r in three_repos]
    entries.append(entry(git_server, "gone/missing"))
    entries.append(
        {"owner": "gone", "name": "host", "url": f"git://127.0.0.1:{dead_port}/gone/host"}
    )
    feed = write_feed(tmp_path / "feed.json", entries)
    common = [
        "--feed", str(feed), "--sink", str(tmp_path / "out"),
        "--allow-host", git_server.host, "--allow-host", f"127.0.0.1:{dead_port}",
    ]  # fmt: skip

    proc = run_module(*common)
    assert proc.returncode == 1, proc.stderr
    records = json_lines(proc.stdout)  # every stdout line, workers' included, is a JSON record
    errors = {r["repo"]: r["reason"] for r in records if r["severity"] == "ERROR" and "repo" in r}
    assert errors == {"gone/missing": "not_found", "gone/host": "unreachable"}
    [report] = reports(tmp_path / "out")
    assert report["counts"]["failed"] == 2 and report["counts"]["processed"] == 3
    assert {(f["repo"], f["reason"]) for f in report["failures"]} == {
        ("gone/missing", "not_found"),
        ("gone/host", "unreachable"),
    }
    assert report["failure_ratio"] == 0.4
    assert proc.stderr == ""

    # The next run leaves both alone (they back off) and exits 0: nothing new failed.
    proc = run_module(*common)
    assert proc.returncode == 0, proc.stdout
    assert json_lines(proc.stdout)[-1]["counts"]["backing_off"] == 2


def failures_state(sink: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((sink / "_state" / "failures.json").read_text())
    return state


def make_due(sink: Path) -> None:
    """As if the backoff had passed: every remembered failure may be retried now."""
    state = failures_state(sink)
    for record in state.values():
        record["retry_after"] = "2000-01-01T00:00:00.000000Z"
    (sink / "_state" / "failures.json").write_text(json.dumps(state))


def test_a_repository_that_stays_broken_does_not_turn_every_run_red(
    git_server: GitServer, three_repos: list[str], tmp_path: Path, silent_listener: int
) -> None:
    entries = [entry(git_server, r) for r in three_repos] + [entry(git_server, "gone/missing")]
    job = Job(git_server, tmp_path, entries)
    assert job() == 1  # a new failure: 1 of 4 is over the 5 % allowed
    [first] = [r for r in job.messages("ERROR") if r.get("repo") == "gone/missing"]
    assert first["reason"] == "not_found" and first["first_failed"]
    since = failures_state(job.out)["gone/missing"]["first_failed"]
    assert since == first["first_failed"]
    clones = git_server.upload_packs()

    # Next day, no change: the missing repository waits for its retry time; exit 0, and the
    # report and the log say which repository keeps failing, why and since when.
    assert job() == 0
    assert job.counts()["backing_off"] == 1 and job.counts()["failed"] == 0
    assert git_server.upload_packs() == clones  # nothing cloned the second time
    [line] = [r for r in job.messages("WARNING") if r.get("repo") == "gone/missing"]
    assert (line["reason"], line["first_failed"]) == ("not_found", since)
    report = _report_of(job)
    assert report["persistent_failures"] == [
        {
            "repo": "gone/missing",
            "reason": "not_found",
            "first_failed": since,
            "failures": 1,
            "retried": False,
            "retry_after": failures_state(job.out)["gone/missing"]["retry_after"],
        }
    ]

    # Its retry is due: it fails again, the same way: persistent, still exit 0, backoff grows.
    make_due(job.out)
    assert job() == 0
    assert job.counts()["failed"] == 1 and job.counts()["failed_persistent"] == 1
    assert not job.messages("ERROR")
    record = failures_state(job.out)["gone/missing"]
    assert record["failures"] == 2 and record["first_failed"] == since

    # An outage: every clone fails, for a new reason: exit 1 whatever failed before.
    make_due(job.out)
    dead = [
        {**e, "url": f"git://127.0.0.1:{silent_listener}/{e['owner']}/{e['name']}", "pushedAt": "x"}
        for e in entries
    ]
    job.write_feed(dead)
    assert job("--allow-host", f"127.0.0.1:{silent_listener}", "--repo-timeout", "1") == 1
    assert job.counts()["failed_new"] == 4

    # A repaired repository is forgotten.
    make_repo(git_server.root / "gone/missing", {"a.txt": "back\n"})
    job.write_feed(entries)
    make_due(job.out)
    assert job() == 0
    assert failures_state(job.out) == {}


def _report_of(job: Job) -> dict[str, Any]:
    [path] = sorted(job.out.glob("_runs/*/task-0.json"), key=lambda p: p.stat().st_mtime)[-1:]
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_per_repository_timeout(
    git_server: GitServer, tmp_path: Path, silent_listener: int
) -> None:
    make_repo(git_server.root / "org/fine", {"a.txt": "a\n"})
    hanging = {"owner": "org", "name": "hangs", "url": f"git://127.0.0.1:{silent_listener}/x"}
    job = Job(git_server, tmp_path, [hanging, entry(git_server, "org/fine")])
    started = time.monotonic()
    code = job(
        "--repo-timeout", "1", "--allow-host", f"127.0.0.1:{silent_listener}",
        "--max-failure-ratio", "0.5",
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert code == 0
    [failure] = [r for r in job.messages("ERROR")]
    assert failure["repo"] == "org/hangs" and failure["reason"] == "timeout"
    assert 0.9 < failure["duration_s"] < 5
    assert sorted(stored(tmp_path / "out")) == ["org/fine"]


def test_missing_sink_and_unreadable_feed_exit_codes(tmp_path: Path) -> None:
    env = {"GCS_BUCKET_NAME": "", "CLOUD_RUN_TASK_COUNT": "", "CLOUD_RUN_TASK_INDEX": ""}
    proc = run_module("--feed", str(tmp_path / "feed.json"), env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "GCS_BUCKET_NAME" in proc.stderr

    proc = run_module("--feed", str(tmp_path / "nope.json"), "--sink", str(tmp_path / "out"))
    assert proc.returncode == 1
    [critical] = [r for r in json_lines(proc.stdout) if r["severity"] == "CRITICAL"]
    assert "nope.json" in critical["message"]
    assert "Traceback" not in proc.stderr
    [report] = reports(tmp_path / "out")
    assert report["fatal"].startswith("feed unreadable")

    proc = run_module("--feed", "nope.json", "--sink", str(tmp_path / "dry"), "--dry-run")
    assert proc.returncode == 1 and not (tmp_path / "dry").exists()


# -- repositories of awkward shapes ----------------------------------------------------------


def test_awkward_repositories(git_server: GitServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7d1f0c\n")
    weird = make_repo(
        git_server.root / "org/weird",
        {
            "README.md": "# weird\n",
            "huge.txt": "H" * 5000,
            "small.txt": "small file\n",
            "logo.png": bytes(range(256)) * 8,
            "data.bin": b"\x00\x01\x02\xff" * 100,
        },
        symlinks={
            "absolute-link": str(secret),
            "relative-link": "../../../../../../../../" + str(secret).lstrip("/"),
            "inside-link": "small.txt",
        },
    )
    sub = make_repo(git_server.root / "org/sub", {"sub.txt": "SUBMODULE-CONTENT\n"})
    (weird / ".gitmodules").write_text(
        f'[submodule "vendor"]\n\tpath = vendor\n\turl = {git_server.url("org/sub")}\n'
    )
    git("update-index", "--add", "--cacheinfo", f"160000,{head(sub)},vendor", cwd=weird)
    git("add", "-A", cwd=weird)
    git("commit", "-q", "-m", "submodule", cwd=weird)
    make_repo(git_server.root / "org/empty")  # no commit at all

    entries = [entry(git_server, "org/weird"), entry(git_server, "org/empty")]
    job = Job(git_server, tmp_path, entries)
    out = job.out
    assert job("--max-file-size", "1000") == 0, [r.get("detail") for r in job.messages("ERROR")]
    assert git_server.upload_packs("org/sub") == 0  # submodules are not fetched

    digests = stored(out)
    text, meta = digests["org/weird"]
    assert "small file" in text and "FILE: small.txt" in text
    assert "HHHHHHHHHH" not in text  # over --max-file-size
    assert "SUBMODULE-CONTENT" not in text
    assert "\x00" not in text
    assert meta["commit"] == head(weird)
    assert b"TOP-SECRET-7d1f0c" not in every_byte(out)
    assert b"TOP-SECRET" not in json.dumps(job.records).encode()

    empty_text, empty_meta = digests["org/empty"]
    assert empty_meta["commit"] == "" and "Repository: org/empty" in empty_text
    assert job("--max-file-size", "1000") == 0
    assert job.counts()["unchanged"] == 2
    assert git_server.upload_packs() == 2


def test_a_digest_stays_within_the_total_size_cap(git_server: GitServer, tmp_path: Path) -> None:
    make_repo(git_server.root / "org/big", {f"part{i}.txt": str(i) * 3000 for i in range(4)})
    job = Job(git_server, tmp_path, [entry(git_server, "org/big")])
    assert job("--max-total-size", "7000") == 0
    text, meta = stored(job.out)["org/big"]
    assert "FILE: part1.txt" in text and "FILE: part2.txt" not in text
    assert (
        "Files analyzed: 2\nFiles left out: 2 of 4, to keep this digest within 7000 bytes" in text
    )
    assert int(meta["size"]) <= 7000
    # The object says it too (a directory sink's .meta.json; custom metadata on Cloud Storage).
    assert (meta["capped"], meta["files_left_out"], meta["left_out_from"]) == (
        "max_total_size", "2", "./ (2)",
    )  # fmt: skip
    [ingested] = [r for r in job.records if r["message"].startswith("ingested")]
    assert ingested["capped"] is True and job.counts()["capped"] == 1

    assert job() == 0  # the cap is part of the settings: the default redoes it, whole
    assert {r["why"] for r in job.records if r["message"].startswith("ingested")} == {"settings"}
    text, meta = stored(job.out)["org/big"]
    assert "FILE: part3.txt" in text and "Files left out" not in text
    assert not {"capped", "files_left_out", "left_out_from"} & set(meta)
    assert job.counts()["capped"] == 0


def test_file_name_that_is_not_utf8(git_server: GitServer, tmp_path: Path) -> None:
    latin1 = b"caf\xe9-latin1.txt".decode(errors="surrogateescape")
    make_repo(git_server.root / "org/latin", {latin1: "latin-1 name\n", "ok.txt": "ok\n"})
    job = Job(git_server, tmp_path, [entry(git_server, "org/latin")])
    assert job() == 0, [r.get("detail") for r in job.messages("ERROR")]
    text, _ = stored(tmp_path / "out")["org/latin"]
    assert "FILE: caf\ufffd-latin1.txt" in text and "latin-1 name" in text and "ok" in text


def slow_digest(path: str, settings: object, label: str, out: str) -> None:
    """Stands in for the digest in a worker process: reports its pid, then hangs."""
    (Path(path).parent.parent / "digest-started").write_text(str(os.getpid()))
    time.sleep(120)


def test_sigterm_during_a_digest_kills_its_worker(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    import ingestion.pipeline

    make_repo(git_server.root / "org/slow", {"a.txt": "a\n"})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(ingestion.pipeline, "_digest", slow_digest)
    marker = scratch / "digest-started"

    def terminate_once_digesting() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_digesting, daemon=True)
    killer.start()
    job = Job(git_server, tmp_path, [entry(git_server, "org/slow")])
    started = time.monotonic()
    assert job() == 1
    killer.join()
    assert time.monotonic() - started < 15
    assert job.counts()["interrupted"] == 1 and job.counts()["failed"] == 0
    assert [r["stage"] for r in job.records if r["message"].startswith("abandoned")] == ["digest"]
    worker = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    assert stored(tmp_path / "out") == {}
    assert not list(scratch.glob("ingestion-task*"))  # the checkout and work dir are removed


def test_sigterm_does_not_wait_for_an_upload_that_keeps_retrying(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingestion.pipeline
    from ingestion.sinks import DirSink

    make_repo(git_server.root / "org/stuck", {"a.txt": "a\n"})
    uploading = threading.Event()
    release = threading.Event()

    def stuck_upload(self: DirSink, relative: str, source: Path, metadata: Any) -> None:
        uploading.set()
        release.wait(30)  # a storage outage: the upload keeps retrying

    monkeypatch.setattr(DirSink, "_put_digest", stuck_upload)
    monkeypatch.setattr(ingestion.pipeline, "STOP_GRACE_S", 0.5)

    def terminate_once_uploading() -> None:
        if uploading.wait(30):
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_uploading, daemon=True)
    killer.start()
    job = Job(git_server, tmp_path, [entry(git_server, "org/stuck")])
    started = time.monotonic()
    try:
        assert job() == 1
        assert time.monotonic() - started < 8
    finally:
        release.set()
        killer.join()
    assert job.counts()["interrupted"] == 1 and job.counts()["processed"] == 0
    [report] = reports(job.out)
    assert report["stopped_by"] == "SIGTERM" and report["counts"]["interrupted"] == 1


# -- process-level behaviour -----------------------------------------------------------------


def test_sigterm_stops_promptly_without_partial_objects(
    git_server: GitServer, tmp_path: Path, silent_listener: int
) -> None:
    fast = [f"org/fast{i}" for i in range(3)]
    for rel in fast:
        make_repo(git_server.root / rel, {"f.txt": rel * 100})
    hanging = [
        {"owner": "slow", "name": f"s{i}", "url": f"git://127.0.0.1:{silent_listener}/s{i}"}
        for i in range(4)
    ]
    feed = write_feed(tmp_path / "feed.json", [entry(git_server, r) for r in fast] + hanging)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "ingestion", "--feed", str(feed), "--sink", str(out),
            "--allow-host", git_server.host, "--allow-host", f"127.0.0.1:{silent_listener}",
            "--concurrency", "2", "--repo-timeout", "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "CLOUD_RUN_EXECUTION": "exec-term"},
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while sum(r["message"].startswith("ingested") for r in seen) < len(fast):
        assert time.monotonic() < deadline, seen
        seen.append(json.loads(proc.stdout.readline()))
    time.sleep(0.3)  # both slots are now hanging on the silent host
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    rest, err = proc.communicate(timeout=15)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 1, err

    records = seen + json_lines(rest)
    assert any(r["severity"] == "WARNING" and "SIGTERM" in r["message"] for r in records)
    [report] = reports(out)
    assert report["stopped_by"] == "SIGTERM"
    assert report["counts"]["processed"] == 3 and report["counts"]["failed"] == 0
    assert report["counts"]["interrupted"] == 2  # in flight; the other two were never started
    for md in out.glob("*/*.md"):
        meta = json.loads(md.with_name(md.name + ".meta.json").read_text())
        assert meta["sha256"] == hashlib.sha256(md.read_bytes()).hexdigest()
    assert sorted(stored(out)) == fast
    assert not list(out.rglob("*.tmp"))


def test_demo_runs_on_its_embedded_sample_and_is_incremental(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingestion import demo

    args = ["--out", str(tmp_path / "digests"), "--work", str(tmp_path / "work")]
    assert demo.main(args) == 0
    names = {f"{r['owner']}/{r['name']}" for r in demo.sample()["repositories"]}
    assert set(stored(tmp_path / "digests")) == names
    out = capsys.readouterr().out
    assert f"{len(names)} digests in {tmp_path / 'digests'}" in out

    assert demo.main(args) == 0  # same commits, same pushedAt: nothing to do
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    finished = records[-1]
    assert finished["counts"]["unchanged"] == len(names) and finished["counts"]["processed"] == 0
    assert finished["counts"]["rejected"] == len(demo.sample()["rejected_examples"])
