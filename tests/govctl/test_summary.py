"""govctl's reader of ``_state/summary.json`` against the job's own writer and reader.

govctl may not import ``ingestion``, so it reads the summary with code of its own written from
docs/ingestion.md's table; these tests keep the two in step: whatever the job writes (several
tasks, a changed task count, a watermark), govctl reads the same figures as the job's reader.
"""

from __future__ import annotations

import json
from typing import Any

from govctl.emulator.storage import FakeGcs
from govctl.gcp import clients, summary
from ingestion import summary as job_summary
from ingestion.sinks import open_sink
from ingestion.summary import ShardFigures, TaskResult

PROJECT = "summary-test"
BUCKET = "summary-bucket"


def _task(
    index: int, count: int, execution: str, figures: ShardFigures, code: int = 0
) -> TaskResult:
    return TaskResult(
        execution=execution,
        task_index=index,
        task_count=count,
        started_at=f"2026-12-01T02:0{index}:00.000000Z",
        finished_at=f"2026-12-01T02:1{index}:00.000000Z",
        exit_code=code,
        stopped_by=None,
        fatal=None,
        counts={"processed": 3, "failed": code},
        shard=figures,
    )


def _figures(count: int, at: str) -> ShardFigures:
    return ShardFigures(count, count * 1000, 0, tuple([at] * count))


def _both(fake_gcs: FakeGcs) -> tuple[summary.Summary | None, job_summary.Summary | None]:
    sink = open_sink(f"gs://{BUCKET}", storage_endpoint=fake_gcs.url)
    return summary.read(PROJECT, BUCKET), job_summary.read_summary(sink)


def test_no_summary_reads_as_none(fake_gcs: FakeGcs) -> None:
    clients.storage_client(PROJECT).create_bucket(BUCKET)
    assert summary.read(PROJECT, BUCKET) is None


def test_what_the_job_writes_govctl_reads_alike(fake_gcs: FakeGcs) -> None:
    clients.storage_client(PROJECT).create_bucket(BUCKET)
    sink = open_sink(f"gs://{BUCKET}", storage_endpoint=fake_gcs.url)
    job_summary.update_summary(sink, _task(0, 2, "ex-1", _figures(4, "2026-12-01T02:05:00Z")))
    got, want = _both(fake_gcs)
    assert got is not None and want is not None and got.digests is not None
    totals = want.totals()
    assert totals is not None
    # One of two shards: a sum, not the bucket's.
    assert (got.digests.count, got.digests.bytes, got.digests.exact) == (4, 4000, False)
    assert got.last_run is not None and got.last_run.outcome == "incomplete"

    job_summary.update_summary(sink, _task(1, 2, "ex-1", _figures(6, "2026-12-01T02:06:00Z"), 1))
    got, want = _both(fake_gcs)
    assert got is not None and want is not None and got.digests is not None
    totals = want.totals()
    assert totals is not None
    assert (got.digests.count, got.digests.bytes, got.digests.exact) == (
        totals.count,
        totals.bytes,
        totals.exact,
    )
    assert got.digests.exact and got.digests.count == 10
    assert got.digests.newest_processed_at is not None
    assert got.digests.newest_processed_at.isoformat().startswith("2026-12-01T02:06:00")
    run = want.last_run()
    assert run is not None and got.last_run is not None
    assert (got.last_run.execution, got.last_run.outcome, got.last_run.tasks_reported) == (
        run["execution"],
        run["outcome"],
        run["tasks_reported"],
    )
    assert got.last_run.outcome == "failed" and got.last_run.counts["processed"] == 6
    assert got.failures is not None and got.failures.count == 0


def test_index_section_is_written_without_touching_the_jobs(fake_gcs: FakeGcs) -> None:
    clients.storage_client(PROJECT).create_bucket(BUCKET)
    sink = open_sink(f"gs://{BUCKET}", storage_endpoint=fake_gcs.url)
    job_summary.update_summary(sink, _task(0, 1, "ex-1", _figures(3, "2026-12-01T02:05:00Z")))
    before = _raw()

    mark = "2026-12-01T03:00:00.000000Z"
    summary.update_index(PROJECT, BUCKET, lambda index: {**index, "watermark": mark})
    after = _raw()
    assert after["index"] == {"watermark": mark}
    assert {k: v for k, v in after.items() if k != "index"} == before
    got, want = _both(fake_gcs)
    assert got is not None and want is not None
    assert got.pending_for_index() == want.pending_for_index() == 0

    # The job's next task counts what is newer than the watermark it read.
    job_summary.update_summary(sink, _task(0, 1, "ex-2", _figures(2, "2026-12-01T04:00:00Z")))
    got, want = _both(fake_gcs)
    assert got is not None and want is not None
    assert got.pending_for_index() == want.pending_for_index() == 2
    assert _raw()["index"] == {"watermark": mark}


def test_a_task_writing_in_between_is_kept(fake_gcs: FakeGcs) -> None:
    """update_index retries on the generation precondition instead of losing the job's write."""
    clients.storage_client(PROJECT).create_bucket(BUCKET)
    sink = open_sink(f"gs://{BUCKET}", storage_endpoint=fake_gcs.url)
    job_summary.update_summary(sink, _task(0, 1, "ex-1", _figures(3, "2026-12-01T02:05:00Z")))
    calls = 0

    def change(index: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # a task of the job finishes between govctl's read and its write
            job_summary.update_summary(
                sink, _task(0, 1, "ex-2", _figures(5, "2026-12-01T02:09:00Z"))
            )
        return {**index, "watermark": "2026-12-01T03:00:00Z"}

    summary.update_index(PROJECT, BUCKET, change)
    assert calls == 2
    got = summary.read(PROJECT, BUCKET)
    assert got is not None and got.digests is not None and got.last_run is not None
    assert got.digests.count == 5 and got.last_run.execution == "ex-2"
    assert got.index["watermark"] == "2026-12-01T03:00:00Z"


def test_an_unknown_schema_is_not_guessed_at(fake_gcs: FakeGcs) -> None:
    storage = clients.storage_client(PROJECT)
    storage.create_bucket(BUCKET)
    blob = storage.bucket(BUCKET).blob(summary.SUMMARY_PATH)
    blob.upload_from_string(json.dumps({"schema": 2, "digests": {}}))
    assert summary.read(PROJECT, BUCKET) is None
    blob.upload_from_string(b"not json")
    assert summary.read(PROJECT, BUCKET) is None


def _raw() -> dict[str, Any]:
    blob = clients.storage_client(PROJECT).bucket(BUCKET).blob(summary.SUMMARY_PATH)
    value: dict[str, Any] = json.loads(blob.download_as_bytes())
    return value
