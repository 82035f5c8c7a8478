"""``_state/summary.json``: exact totals from concurrent tasks, sections of others kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from govctl.emulator.storage import FakeGcs
from ingestion.sinks import DirSink, GcsSink, Stored
from ingestion.sinks.base import SUMMARY_PATH
from ingestion.summary import (
    SCHEMA,
    ShardFigures,
    TaskResult,
    parse_summary,
    read_summary,
    shard_figures,
    update_summary,
    updated,
)
from tests.support.git import GitServer, make_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = "2026-01-01T02:00:00.000000Z"


def task(index: int, count: int, execution: str = "e1", **kw: Any) -> TaskResult:
    values: dict[str, Any] = {
        "execution": execution,
        "task_index": index,
        "task_count": count,
        "started_at": T0,
        "finished_at": "2026-01-01T02:05:00.000000Z",
        "exit_code": 0,
        "stopped_by": None,
        "fatal": None,
        "counts": {"processed": 2, "unchanged": 3},
        "shard": ShardFigures(5, 500, 0, (T0,) * 5),
        **kw,
    }
    return TaskResult(**values)


# -- the pure parts --------------------------------------------------------------------------


def test_shard_figures_take_what_was_written_over_the_listing() -> None:
    stored = {
        "o/a": Stored({"processedAt": "2025-01-01T00:00:00Z"}, 10),
        "o/b": Stored({"processedAt": "2025-01-02T00:00:00Z"}, 20),
        "o/gone": Stored({}, 7),  # left the feed: nobody's shard
    }
    written = {"o/b": (25, "2026-01-01T00:00:00Z"), "o/c": (30, "2026-01-01T00:00:01Z")}
    mine = shard_figures(stored, ["o/a", "o/b", "o/c", "o/never"], written)
    assert (mine.count, mine.bytes, mine.outside_feed) == (3, 65, 0)
    first = shard_figures(stored, ["o/a"], {}, feed_keys={"o/a", "o/b", "o/c"})
    assert (first.count, first.bytes, first.outside_feed) == (2, 17, 1)
    row = mine.as_dict(watermark="2025-06-01T00:00:00Z")
    assert row["oldest_processed_at"] == "2025-01-01T00:00:00Z"
    assert row["newest_processed_at"] == "2026-01-01T00:00:01Z"
    assert row["since_index"] == {"watermark": "2025-06-01T00:00:00Z", "count": 2}


def test_shards_sum_to_exact_totals_once_every_task_of_one_execution_is_in() -> None:
    summary: Any = None
    for i in range(3):
        summary = updated(summary, task(i, 3), {}, now=T0)
        totals = parse_summary(summary).totals()
        assert totals is not None and totals.count == 5 * (i + 1)
        assert totals.exact == (i == 2)
    assert summary["last_run"]["outcome"] == "succeeded"
    assert summary["last_run"]["counts"]["processed"] == 6
    # The next execution: until its last task is in, the sum mixes two runs, and says so.
    summary = updated(
        summary, task(0, 3, "e2", started_at="2026-01-02T02:00:00.000000Z"), {}, now=T0
    )
    assert not parse_summary(summary).totals().exact
    assert (
        summary["last_run"]["execution"] == "e2" and summary["last_run"]["outcome"] == "incomplete"
    )


def test_a_new_task_count_drops_the_old_shards() -> None:
    summary: Any = None
    for i in range(3):
        summary = updated(summary, task(i, 3), {}, now=T0)
    summary = updated(summary, task(0, 2, "e2"), {}, now=T0)
    assert set(summary["digests"]["shards"]) == {"0"} and summary["digests"]["task_count"] == 2
    summary = updated(summary, task(1, 2, "e2"), {}, now=T0)
    totals = parse_summary(summary).totals()
    assert totals is not None and totals.exact and totals.count == 10


def test_an_older_execution_finishing_late_does_not_replace_the_last_run() -> None:
    newer = updated(None, task(0, 1, "e2", started_at="2026-01-02T00:00:00.000000Z"), {}, now=T0)
    later = updated(newer, task(0, 1, "e1", started_at="2026-01-01T00:00:00.000000Z"), {}, now=T0)
    assert later["last_run"]["execution"] == "e2"


def test_failures_and_outcome() -> None:
    failures = {
        "o/a": {"reason": "not_found", "first_failed": T0},
        "o/b": {"reason": "not_found", "first_failed": T0},
        "o/c": {"reason": "timeout", "first_failed": T0},
    }
    summary = updated(None, task(0, 2, exit_code=1, fatal="feed unreadable", shard=None), failures,
                      now=T0)  # fmt: skip
    assert summary["failures"] == {"count": 3, "by_reason": {"not_found": 2, "timeout": 1}}
    assert summary["last_run"]["outcome"] == "failed"
    assert summary["last_run"]["tasks"]["0"]["fatal"] == "feed unreadable"
    assert "digests" not in summary  # nothing listed: the totals are left as they were


def test_the_index_section_is_kept_and_pending_digests_are_counted() -> None:
    index = {"watermark": "2026-01-01T01:00:00.000000Z", "data_store": "ds", "by": "govctl"}
    summary = updated({"schema": SCHEMA, "index": index}, task(0, 1), {}, now=T0)
    assert summary["index"] == index
    parsed = parse_summary(summary)
    assert parsed is not None and parsed.pending_for_index() == 5  # all processed after it
    summary["index"] = {**index, "watermark": "2026-01-01T03:00:00.000000Z"}
    assert parse_summary(summary).pending_for_index() == 0
    summary["index"] = {**index, "watermark": "2025-12-31T00:00:00.000000Z"}
    assert parse_summary(summary).pending_for_index() is None


def test_an_unknown_schema_is_not_read() -> None:
    assert parse_summary({"schema": SCHEMA + 1}) is None
    assert parse_summary(["not", "an", "object"]) is None


# -- read-modify-write ---------------------------------------------------------------------


class RacingSink(DirSink):
    """Someone else (``govctl index sync``) writes the summary between our read and our write."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.raced = False

    def _write_if(self, relative: str, body: bytes, version: str, content_type: str) -> bool:
        if relative == SUMMARY_PATH and not self.raced:
            self.raced = True
            current, at = self.read_json(SUMMARY_PATH)
            other = {**(current or {"schema": SCHEMA}), "index": {"watermark": T0}}
            assert super()._write_if(relative, json.dumps(other).encode(), at, content_type)
        return super()._write_if(relative, body, version, content_type)


def test_a_concurrent_write_is_retried_and_kept(tmp_path: Path) -> None:
    sink = RacingSink(tmp_path)
    update_summary(sink, task(0, 1))
    assert sink.raced
    summary = read_summary(sink)
    assert summary is not None and summary.index() == {"watermark": T0}
    assert summary.totals() is not None and summary.last_run() is not None


# -- the job ---------------------------------------------------------------------------------


def start_task(feed: Path, sink: str, server: GitServer, index: int, count: int, execution: str,
               env: dict[str, str]) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "ingestion", "--feed", str(feed), "--sink", sink,
         "--allow-host", server.host, "--concurrency", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        env={**os.environ, **env, "CLOUD_RUN_EXECUTION": execution,
             "CLOUD_RUN_TASK_INDEX": str(index), "CLOUD_RUN_TASK_COUNT": str(count)},
    )  # fmt: skip


def run_execution(feed: Path, sink: str, server: GitServer, count: int, execution: str,
                  env: dict[str, str] | None = None) -> list[int]:  # fmt: skip
    procs = [start_task(feed, sink, server, i, count, execution, env or {}) for i in range(count)]
    codes = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        codes.append(proc.returncode)
    return codes


def test_concurrent_tasks_keep_exact_totals_in_a_bucket(
    git_server: GitServer, tmp_path: Path, fake_gcs: FakeGcs
) -> None:
    client = storage.Client(project="p", credentials=AnonymousCredentials())
    bucket = client.create_bucket("digests")
    entries = []
    for i in range(9):
        make_repo(git_server.root / f"org/r{i}", {"README.md": f"# {i}\n" * (i + 1)})
        entries.append({"owner": "org", "name": f"r{i}", "url": git_server.url(f"org/r{i}"),
                        "pushedAt": "2024-01-01T00:00:00Z"})  # fmt: skip
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(entries))
    # A digest no feed entry owns any more still counts (task 0 counts those).
    bucket.blob("old/gone.md").upload_from_string(b"x" * 123, content_type="text/markdown")
    # govctl's section, written before the run, must survive it.
    index = {"watermark": "2000-01-01T00:00:00.000000Z", "by": "govctl index sync"}
    bucket.blob("_state/summary.json").upload_from_string(
        json.dumps({"schema": SCHEMA, "index": index})
    )

    assert run_execution(feed, "gs://digests", git_server, 3, "exec-a") == [0, 0, 0]
    summary = read_summary(GcsSink("digests", endpoint=fake_gcs.url))
    assert summary is not None and summary.index() == index
    digests = [b for b in client.list_blobs("digests") if not b.name.startswith("_")]
    totals = summary.totals()
    assert totals is not None and totals.exact and totals.task_count == 3
    assert (
        (totals.count, totals.bytes)
        == (len(digests), sum(b.size for b in digests))
        == (
            10,
            totals.bytes,
        )
    )
    run = summary.last_run()
    assert run is not None and run["outcome"] == "succeeded" and run["tasks_reported"] == 3
    assert run["counts"]["processed"] == 9
    assert summary.pending_for_index() == 10  # all written after the watermark

    # Fewer tasks next time: the old shards go, the totals stay exact.
    entries.pop()
    feed.write_text(json.dumps(entries))
    assert run_execution(feed, "gs://digests", git_server, 2, "exec-b") == [0, 0]
    summary = read_summary(GcsSink("digests", endpoint=fake_gcs.url))
    assert summary is not None
    totals = summary.totals()
    assert totals is not None and totals.exact and totals.task_count == 2
    assert totals.count == 10  # org/r8 left the feed, its digest did not leave the bucket
    assert summary.last_run()["counts"]["unchanged"] == 8


def test_the_summary_in_a_directory_sink(git_server: GitServer, tmp_path: Path) -> None:
    make_repo(git_server.root / "org/a", {"a.txt": "a\n"})
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps([{"owner": "org", "name": "a", "url": git_server.url("org/a")}]))
    out = tmp_path / "out"
    assert run_execution(feed, str(out), git_server, 2, "exec-d") == [0, 0]
    summary = read_summary(DirSink(out))
    assert summary is not None
    totals = summary.totals()
    assert totals is not None and totals.exact
    assert (totals.count, totals.bytes) == (1, (out / "org" / "a.md").stat().st_size)


def test_a_broken_summary_is_rebuilt_not_fatal() -> None:
    broken = {
        "schema": SCHEMA,
        "digests": {"task_count": "two", "shards": {"0": {"count": "many"}}},
        "last_run": {"execution": "e1", "started_at": T0, "tasks": {"1": {"counts": ["x"]}}},
        "index": "not an object",
    }
    summary = updated(broken, task(0, 2), {"o/a": "not a record"}, now=T0)
    totals = parse_summary(summary).totals()
    assert totals is not None and totals.count == 5 and not totals.exact
    assert summary["failures"] == {"count": 0, "by_reason": {}}
    assert summary["index"] == "not an object"  # not the job's to repair
