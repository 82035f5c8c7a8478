"""The search index over the bucket: its state, an incremental import, and one query.

The data store is ``[index] data_store`` in ``[index] location``; it indexes the digests of
``[bucket] name``. ``sync`` is an INCREMENTAL import (new and changed digests are indexed,
nothing is removed), safe to run after every ingestion run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from govctl.config import Config
from govctl.errors import GovctlError, UsageError
from govctl.gcp import index
from govctl.gcp.index import DataStore as DataStore
from govctl.gcp.index import Hit as Hit
from govctl.gcp.index import ImportRun as ImportRun

# How often a waiting sync reads its import operation.
POLL_S = 1.0
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
    last_import: ImportRun | None = None
    last_success: ImportRun | None = None
    digests: int | None = None
    pending: int | None = None  # digests written after the last successful import began
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
    digests = pending = None
    bucket_error = None
    try:
        digests, pending = index.digests_newer_than(
            missing.project, cfg.bucket, last_success.started if last_success else None
        )
    except GovctlError as err:
        bucket_error = str(err)
    return replace(
        missing,
        exists=True,
        content_config=store.content_config,
        documents=index.count_documents(path),
        last_import=runs[0] if runs else None,
        last_success=last_success,
        digests=digests,
        pending=pending,
        bucket_error=bucket_error,
    )


def ensure_data_store(cfg: Config) -> tuple[DataStore, bool]:
    """The data store, created when missing (for `govctl index create` and `setup
    --with-index`), and whether it was created now."""
    path = data_store_path(cfg)
    store = index.get_data_store(path)
    if store is not None:
        return store, False
    return index.create_data_store(path, f"govreposcrape digests (gs://{cfg.bucket})"), True


def import_uri(cfg: Config) -> str:
    """What an import reads: every digest of the bucket."""
    return index.import_uri(cfg.bucket)


def sync(
    cfg: Config, *, wait: bool = True, progress: Callable[[ImportRun], None] | None = None
) -> ImportRun:
    """Start an INCREMENTAL import of the bucket's digests; with ``wait``, follow it to its
    end, calling ``progress(run)`` at each poll."""
    path = data_store_path(cfg)
    if index.get_data_store(path) is None:
        raise _missing(cfg)
    run = index.start_import(path, cfg.bucket)
    if progress:
        progress(run)
    while wait and not run.done:
        time.sleep(POLL_S)
        run = index.get_import(run.name)
        if progress:
            progress(run)
    return run


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
