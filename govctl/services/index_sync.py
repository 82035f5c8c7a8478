"""`govctl index sync`: bring the data store in line with the bucket's digests and the feed.

What is indexed is kept in the bucket: the record ``_index/record.json.gz`` (each repository's
digest generation, metageneration and part count as imported) and the ``index`` section of the
job's ``_state/summary.json`` (the watermark, the feed compared against, counts). A sync:

1. **Settles** an import an earlier ``--no-wait`` sync started (records it, or forgets it if
   it failed), or stops when it still runs.
2. **Decides what to read.** When the summary says no digest was processed after the
   watermark (``pending_for_index() == 0``) and no run of the job was writing while the last
   sync listed the bucket, nothing is listed: only the feed the last run used is compared
   (one small read of its reference) with the one the last sync saw. Otherwise the digests are
   listed once, with their generations and metadata (1,000 a page).
3. **Plans** (:mod:`govctl.services.index_plan`): digests new or rewritten since the record are
   imported; repositories that left the feed, or whose digest is gone, and parts a digest no
   longer has are purged. With ``--full``, or without a record (the first sync, or a new data
   store), every digest is imported and every document no repository accounts for is purged
   (ListDocuments).
4. **Acts**: writes the parts of digests over 2.5 MB, purges, writes the manifest
   ``_index/imports/{time}.jsonl`` and imports it (INCREMENTAL, ``data_schema`` ``document``).
   Nothing to import: no ImportDocuments call.
5. **Records** — only once the import succeeded with no failure — the new record and the index
   section (watermark = when the listing began), then removes part objects no longer used and
   the previous manifest. A failed import records nothing: the next sync does it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from govctl.errors import GovctlError
from govctl.gcp import index, index_objects
from govctl.gcp import summary as gsummary
from govctl.gcp.index import ImportRun
from govctl.services import index_plan as ip

# How often a waiting sync reads its import operation.
POLL_S = 1.0
# A run of the job that was writing within this much of the last sync's listing may have
# uploaded digests the listing missed with a processedAt before the watermark: then the
# summary's pending count cannot be trusted and the bucket is listed (clock skew included).
OVERLAP = timedelta(seconds=60)
RECORD_NEXT = f"{ip.INDEX_PREFIX}/record.next.json.gz"


@dataclass(frozen=True)
class IndexState:
    """The summary's ``index`` section, as ``govctl index sync`` writes it."""

    data_store: str
    watermark: str | None = None
    feed_sha256: str | None = None
    repositories: int = 0
    documents: int = 0
    synced_at: str | None = None
    manifest: str | None = None
    in_flight: Mapping[str, Any] | None = None

    @staticmethod
    def of(section: Mapping[str, Any], data_store: str) -> IndexState | None:
        """The state of ``data_store``; None when the section is about another data store
        (or empty): then nothing recorded applies and the next sync is a full one."""
        if section.get("data_store") != data_store:
            return None

        def text(key: str) -> str | None:
            value = section.get(key)
            return value if isinstance(value, str) else None

        def number(key: str) -> int:
            value = section.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        flight = section.get("in_flight")
        return IndexState(
            data_store=data_store,
            watermark=text("watermark"),
            feed_sha256=text("feed_sha256"),
            repositories=number("repositories"),
            documents=number("documents"),
            synced_at=text("synced_at"),
            manifest=text("manifest"),
            in_flight=flight if isinstance(flight, dict) and "operation" in flight else None,
        )

    def as_section(self) -> dict[str, Any]:
        return {
            "data_store": self.data_store,
            "watermark": self.watermark,
            "feed_sha256": self.feed_sha256,
            "repositories": self.repositories,
            "documents": self.documents,
            "synced_at": self.synced_at,
            "manifest": self.manifest,
            "in_flight": dict(self.in_flight) if self.in_flight else None,
        }


@dataclass(frozen=True)
class SyncResult:
    run: ImportRun | None  # the import; None when there was nothing to import
    reason: str  # what the sync read and why ("" never)
    listed: int | None = None  # digests listed; None when the bucket was not listed
    changed: int = 0  # repositories imported (new or changed digests)
    documents: int = 0  # documents in the manifest
    removed: tuple[str, ...] = ()  # repositories that left the index
    purged: int = 0  # documents deleted
    stale: int = 0  # of them, documents no repository accounted for
    parts_written: int = 0
    feed_known: bool = True
    manifest: str | None = None  # gs:// URI of the manifest imported
    settled: str | None = None  # what became of an earlier --no-wait import
    recorded: bool = False  # the record and the summary now say what the index holds


@dataclass
class _Sync:
    project: str
    bucket: str
    path: str  # the data store
    summary: gsummary.Summary | None
    state: IndexState | None
    notes: list[str] = field(default_factory=list)


def run(
    project: str,
    bucket: str,
    path: str,
    *,
    wait: bool = True,
    full: bool = False,
    progress: Callable[[ImportRun], None] | None = None,
) -> SyncResult:
    summary = gsummary.read(project, bucket)
    sync = _Sync(project, bucket, path, summary, IndexState.of(_section(summary), path))
    settled = _settle(sync)
    record = None if full or sync.state is None else _read_record(sync)
    why = _why_list(sync, record, full)
    if why is None:
        result = _without_listing(sync, record or {}, wait, progress)
    else:
        result = _with_listing(sync, record, why, full=full, wait=wait, progress=progress)
    return replace(result, settled=settled)


def _section(summary: gsummary.Summary | None) -> Mapping[str, Any]:
    return summary.index if summary is not None else {}


def _read_record(sync: _Sync) -> dict[str, ip.Indexed] | None:
    return ip.record_from_json(index_objects.read_json(sync.project, sync.bucket, ip.RECORD_PATH))


def _why_list(sync: _Sync, record: dict[str, ip.Indexed] | None, full: bool) -> str | None:
    """Why the bucket must be listed; None when the summary shows no digest changed."""
    if full:
        return "--full: every digest is imported again"
    if record is None or sync.state is None:
        return "no record of what the data store holds yet: every digest is imported"
    if sync.summary is None:
        return "no summary of the job's digests (_state/summary.json)"
    pending = sync.summary.pending_for_index()
    if pending is None:
        return "the summary cannot say which digests are new"
    if pending:
        return f"{pending} digests were processed after the last sync"
    if _overlapped(sync.summary.last_run, sync.summary.index_watermark):
        return "a run of the job was writing while the last sync listed the bucket"
    return None


def _overlapped(run: gsummary.LastRun | None, watermark: datetime | None) -> bool:
    if run is None or watermark is None:
        return False
    if run.outcome == "incomplete" or run.started_at is None or run.finished_at is None:
        return True
    return run.started_at - OVERLAP <= watermark <= run.finished_at + OVERLAP


def _last_execution(sync: _Sync) -> str | None:
    last = sync.summary.last_run if sync.summary is not None else None
    return last.execution if last is not None else None


def _without_listing(
    sync: _Sync,
    record: dict[str, ip.Indexed],
    wait: bool,
    progress: Callable[[ImportRun], None] | None,
) -> SyncResult:
    assert sync.state is not None
    since = f"no digest was processed after the last sync ({sync.state.watermark})"
    execution = _last_execution(sync)
    sha = index_objects.feed_sha(sync.project, sync.bucket, execution) if execution else None
    if sha is None or sha == sync.state.feed_sha256:
        return SyncResult(None, f"{since} and the feed is the same: nothing to do")
    feed = index_objects.feed_keys(sync.project, sync.bucket, execution) if execution else None
    if feed is None:
        return SyncResult(None, f"{since}; the feed's snapshot is gone", feed_known=False)
    plan = ip.departures(record, feed[1])
    return _act(sync, plan, f"{since}; the feed changed", feed[0], sync.state.watermark, [],
                wait=wait, progress=progress)  # fmt: skip


def _with_listing(
    sync: _Sync,
    record: dict[str, ip.Indexed] | None,
    why: str,
    *,
    full: bool,
    wait: bool,
    progress: Callable[[ImportRun], None] | None,
) -> SyncResult:
    began = datetime.now(UTC)
    stored = index_objects.list_digests(sync.project, sync.bucket)
    digests = {
        k: ip.Digest(k, d.size, d.generation, d.metageneration, d.metadata)
        for k, d in stored.items()
    }
    execution = _last_execution(sync)
    feed = index_objects.feed_keys(sync.project, sync.bucket, execution) if execution else None
    plan = ip.plan(record or {}, digests, feed[1] if feed else None, everything=full)
    stale = (
        ip.unexpected(index.document_ids(sync.path), plan.record) if record is None or full else []
    )
    result = _act(sync, plan, why, feed[0] if feed else None, _rfc3339(began), stale,
                  wait=wait, progress=progress)  # fmt: skip
    return replace(result, listed=len(digests), feed_known=feed is not None)


def _act(
    sync: _Sync,
    plan: ip.SyncPlan,
    why: str,
    feed_sha: str | None,
    watermark: str | None,
    stale: list[str],
    *,
    wait: bool,
    progress: Callable[[ImportRun], None] | None,
) -> SyncResult:
    parts = _write_parts(sync, plan.imports)
    purge_ids = [*plan.purge_ids, *stale]
    purged = index.purge(sync.path, purge_ids).purged if purge_ids else 0
    base = SyncResult(
        None,
        why,
        changed=len(plan.imports),
        documents=plan.import_documents,
        removed=plan.removed,
        purged=purged,
        stale=len(stale),
        parts_written=parts,
    )
    state = IndexState(
        data_store=sync.path,
        watermark=watermark,
        feed_sha256=feed_sha or (sync.state.feed_sha256 if sync.state else None),
        repositories=len(plan.record),
        documents=plan.documents,
        synced_at=_rfc3339(datetime.now(UTC)),
        manifest=sync.state.manifest if sync.state else None,
    )
    if not plan.imports:
        _record(sync, plan.record, plan.drop_parts, state)
        return replace(base, recorded=True)
    manifest = _write_manifest(sync, plan.imports)
    run = index.start_import(sync.path, f"gs://{sync.bucket}/{manifest}")
    state = replace(state, manifest=manifest)
    if not wait:
        _in_flight(sync, run, plan, state)
        return replace(base, run=run, manifest=f"gs://{sync.bucket}/{manifest}")
    run = _follow(run, progress)
    done = run.state == "succeeded" and run.failure_count == 0
    if done:
        _record(sync, plan.record, plan.drop_parts, state)
    return replace(base, run=run, manifest=f"gs://{sync.bucket}/{manifest}", recorded=done)


def _follow(run: ImportRun, progress: Callable[[ImportRun], None] | None) -> ImportRun:
    if progress:
        progress(run)
    while not run.done:
        time.sleep(POLL_S)
        run = index.get_import(run.name)
        if progress:
            progress(run)
    return run


def _write_parts(sync: _Sync, imports: tuple[ip.Digest, ...]) -> int:
    """Write the parts of every digest too large for one document; how many were written."""
    written = 0
    for digest in imports:
        if digest.parts == 1:
            continue
        data = index_objects.read_bytes(
            sync.project, sync.bucket, f"{digest.key}.md", generation=digest.generation
        )
        if data is None:
            raise GovctlError(
                f"the digest gs://{sync.bucket}/{digest.key}.md changed while syncing",
                fix="run `govctl index sync` again",
            )
        pieces = ip.split(data, digest.parts)
        for k, piece in enumerate(pieces, 1):
            header = ip.part_header(digest.key, k, len(pieces)) if k > 1 else b""
            index_objects.write(sync.project, sync.bucket, ip.part_path(digest.key, k),
                                header + piece, index_objects.TEXT_TYPE)  # fmt: skip
            written += 1
    return written


def _write_manifest(sync: _Sync, imports: tuple[ip.Digest, ...]) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = f"{ip.IMPORTS_PREFIX}{stamp}.jsonl"
    lines = (
        ip.manifest_line(sync.bucket, digest, part)
        for digest in imports
        for part in range(1, digest.parts + 1)
    )
    index_objects.write_lines(sync.project, sync.bucket, path, lines)
    return path


def _record(
    sync: _Sync, record: dict[str, ip.Indexed], drop: tuple[str, ...], state: IndexState
) -> None:
    """The index holds ``record`` now: keep it, and say so in the summary; then remove what
    no document uses any more (parts, the previous manifest)."""
    index_objects.write_json(sync.project, sync.bucket, ip.RECORD_PATH, ip.record_to_json(record))
    gsummary.update_index(sync.project, sync.bucket, lambda _: state.as_section())
    old = sync.state.manifest if sync.state else None
    gone = [*drop, *([old] if old and old != state.manifest else [])]
    if gone:
        index_objects.delete(sync.project, sync.bucket, gone)


def _in_flight(sync: _Sync, run: ImportRun, plan: ip.SyncPlan, state: IndexState) -> None:
    """A --no-wait import: keep what to record once it succeeds; the next sync settles it."""
    index_objects.write_json(sync.project, sync.bucket, RECORD_NEXT, ip.record_to_json(plan.record))
    flight = {"operation": run.name, "drop_parts": list(plan.drop_parts), **state.as_section()}
    flight.pop("in_flight")
    kept = sync.state.as_section() if sync.state else {"data_store": sync.path}
    gsummary.update_index(sync.project, sync.bucket, lambda _: {**kept, "in_flight": flight})


def _settle(sync: _Sync) -> str | None:
    """What became of the import an earlier ``--no-wait`` sync started (None: there was
    none); ``sync.state`` is updated. Raises while it still runs."""
    state = sync.state
    if state is None or state.in_flight is None:
        return None
    flight = state.in_flight
    name = str(flight["operation"])
    run = index.get_import(name)
    if not run.done:
        raise GovctlError(
            f"the import {name} that an earlier sync started is still running",
            fix="wait for it to end (`govctl index status`), then sync again",
        )
    settled = replace(state, in_flight=None)
    if run.state == "succeeded" and run.failure_count == 0:
        after = IndexState.of(flight, sync.path) or settled
        record = ip.record_from_json(
            index_objects.read_json(sync.project, sync.bucket, RECORD_NEXT)
        )
        if record is not None:
            sync.state = state  # the previous manifest is the one to remove
            _record(
                sync, record, tuple(flight.get("drop_parts") or ()), replace(after, in_flight=None)
            )
            sync.state = replace(after, in_flight=None)
            return f"recorded the import {name} an earlier sync started"
    gsummary.update_index(sync.project, sync.bucket, lambda _: settled.as_section())
    sync.state = settled
    return (
        f"the import {name} an earlier sync started did not succeed: its digests are imported again"
    )


def _rfc3339(moment: datetime) -> str:
    """As the job writes times: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
