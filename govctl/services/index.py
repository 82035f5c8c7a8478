"""The search index over the bucket: its state, a sync, and one query.

The data store is ``[index] data_store`` in ``[index] location``; it indexes the digests of
``[bucket] name``. ``sync`` (:mod:`govctl.services.index_sync`) imports the digests that changed
since the last sync and removes the repositories that left the feed; safe to run after every
ingestion run. ``status`` reads the job's summary (``_state/summary.json``) and lists the bucket
only when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from govctl.config import Config
from govctl.errors import GovctlError, UsageError
from govctl.gcp import index
from govctl.gcp import summary as gsummary
from govctl.gcp.index import DataStore as DataStore
from govctl.gcp.index import Hit as Hit
from govctl.gcp.index import ImportRun as ImportRun
from govctl.services import index_sync
from govctl.services.index_sync import IndexState
from govctl.services.index_sync import SyncResult as SyncResult

MAX_RESULTS = 100  # SearchRequest.page_size maximum for unstructured data


def data_store_path(cfg: Config) -> str:
    return index.store_path(cfg.require_project(), cfg.index.location, cfg.index.data_store)


def _missing(cfg: Config) -> GovctlError:
    return GovctlError(
        f"data store {cfg.index.data_store} missing "
        f"(project {cfg.project}, location {cfg.index.location})",
        fix="create it with `govctl index create`",
    )


@dataclass(frozen=True)
class IndexStatus:
    project: str
    location: str
    data_store: str
    bucket: str
    exists: bool
    content_config: str | None = None
    documents: int | None = None
    documents_from: str | None = None  # "sync" (the summary, as of the last sync) or "data_store"
    last_import: ImportRun | None = None
    last_success: ImportRun | None = None
    digests: int | None = None
    pending: int | None = None  # digests processed after the last sync; None: cannot say
    pending_from: str | None = None  # "summary" or "listing" (there is no summary)
    watermark: datetime | None = None  # digests processed before it are indexed
    synced_at: datetime | None = None
    in_flight: str | None = None  # an import a --no-wait sync started, not yet recorded
    bucket_error: str | None = None


def status(cfg: Config) -> IndexStatus:
    path = data_store_path(cfg)
    missing = IndexStatus(
        project=cfg.require_project(),
        location=cfg.index.location,
        data_store=cfg.index.data_store,
        bucket=cfg.bucket,
        exists=False,
    )
    store = index.get_data_store(path)
    if store is None:
        return missing
    runs = index.imports(path)
    last_success = next((r for r in runs if r.state == "succeeded"), None)
    found = replace(
        missing,
        exists=True,
        content_config=store.content_config,
        last_import=runs[0] if runs else None,
        last_success=last_success,
    )
    try:
        summary = gsummary.read(cfg.project, cfg.bucket)
    except GovctlError as err:
        return _counted(replace(found, bucket_error=str(err)), path, None)
    state = IndexState.of(summary.index, path) if summary is not None else None
    if summary is None or summary.digests is None:
        # No summary of the job's (it has not run since summaries began, or only a sync wrote
        # the object): the one case where the bucket is listed.
        mark = _time(state.watermark) if state else None
        since = mark or (last_success.started if last_success else None)
        return _listed(replace(_counted(found, path, state), watermark=since), since)
    return _pending(_counted(found, path, state), summary, state)


def _counted(st: IndexStatus, path: str, state: IndexState | None) -> IndexStatus:
    """The document count: as the last sync recorded it, else counted (ListDocuments)."""
    if state is not None and state.synced_at is not None:
        return replace(st, documents=state.documents, documents_from="sync")
    return replace(st, documents=index.count_documents(path), documents_from="data_store")


def _pending(st: IndexStatus, summary: gsummary.Summary, state: IndexState | None) -> IndexStatus:
    """What waits for a sync, from the summary alone (no listing)."""
    totals = summary.digests
    digests = totals.count if totals is not None else None
    flight = str(state.in_flight["operation"]) if state and state.in_flight else None
    if state is None or state.watermark is None:
        # Never synced into this data store: every digest waits.
        return replace(st, digests=digests, pending=digests, pending_from="summary",
                       in_flight=flight)  # fmt: skip
    return replace(
        st,
        digests=digests,
        pending=summary.pending_for_index(),
        pending_from="summary",
        watermark=summary.index_watermark,
        synced_at=_time(state.synced_at),
        in_flight=flight,
    )


def _listed(st: IndexStatus, since: datetime | None) -> IndexStatus:
    """Without a summary: list the bucket (one listing) for the digests written after
    ``since`` (the last sync's watermark, else the last successful import's start)."""
    try:
        digests, pending = index.digests_newer_than(st.project, st.bucket, since)
    except GovctlError as err:
        return replace(st, bucket_error=str(err))
    return replace(st, digests=digests, pending=pending, pending_from="listing")


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def ensure_data_store(cfg: Config) -> tuple[DataStore, bool]:
    """The data store, created when missing (for `govctl index create` and `setup
    --with-index`), and whether it was created now."""
    path = data_store_path(cfg)
    store = index.get_data_store(path)
    if store is not None:
        return store, False
    return index.create_data_store(path, f"govreposcrape digests (gs://{cfg.bucket})"), True


def sync(
    cfg: Config,
    *,
    wait: bool = True,
    full: bool = False,
    progress: Callable[[ImportRun], None] | None = None,
) -> SyncResult:
    """Import what changed since the last sync and remove what left the feed; with ``wait``,
    follow the import to its end, calling ``progress(run)`` at each poll."""
    path = data_store_path(cfg)
    if index.get_data_store(path) is None:
        raise _missing(cfg)
    return index_sync.run(
        cfg.require_project(), cfg.bucket, path, wait=wait, full=full, progress=progress
    )


def check_query(query: str, limit: int) -> str:
    """Bad input is exit 2 before any call."""
    if not query.strip():
        raise UsageError("empty search query ''", fix="pass a word or phrase, e.g. 'frontend'")
    if not 1 <= limit <= MAX_RESULTS:
        raise UsageError(f"invalid -n {limit}: expected 1 to {MAX_RESULTS} results")
    return query.strip()


def search(cfg: Config, query: str, limit: int) -> tuple[list[Hit], int]:
    """The top ``limit`` hits and how many matched."""
    query = check_query(query, limit)
    path = data_store_path(cfg)
    if index.get_data_store(path) is None:
        raise _missing(cfg)
    return index.search(path, query, limit)
