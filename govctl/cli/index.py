"""`govctl index`: the Vertex AI Search data store that indexes the bucket's digests."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from govctl import render, validate
from govctl.cli.options import Json, Project, settings
from govctl.errors import GovctlError

if TYPE_CHECKING:
    from govctl.services.index import Hit, ImportRun, IndexStatus, SyncResult

app = typer.Typer(
    add_completion=False,
    rich_markup_mode="markdown",
    no_args_is_help=True,
    help="The search index over the bucket's digests: `status`, `sync`, `search`, `create`.",
)


def _import_line(run: ImportRun) -> str:
    what = {"running": "running", "succeeded": "succeeded", "failed": "FAILED"}[run.state]
    counts = f"{run.success_count} imported, {run.failure_count} failed of {run.total_count}"
    return f"{what} {render.when(run.started)} · {counts}"


def _status_json(st: IndexStatus) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(st)
    data["pending_digests"] = data.pop("pending")
    return data


@app.command()
def status(project: Project = None, json: Json = False) -> None:
    """The data store, its documents, the last import and how many digests wait for a sync.

    A digest waits when it was processed after the last sync. Read from the job's summary
    (`_state/summary.json`); the bucket is listed only when there is none.
    """
    cfg = settings(project)
    cfg.require_project()
    from govctl.services import index

    with render.progress("reading the data store, its imports and the job's summary"):
        st = index.status(cfg)
    if json:
        render.json_out(_status_json(st))
        return
    if not st.exists:
        rows = [("data store", f"{st.data_store} ({st.location}) missing — create it with "
                 "`govctl index create`")]  # fmt: skip
    else:
        rows = _status_rows(st)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        render.out(f"{key:<{width}}  {value}")


def _status_rows(st: IndexStatus) -> list[tuple[str, str]]:
    counted = " (as of the last sync)" if st.documents_from == "sync" else ""
    rows = [("data store", f"{st.data_store} ({st.location}) · {st.documents} documents{counted}")]
    run = st.last_import
    if run is None:
        rows.append(("last import", "none yet — next: govctl index sync"))
    else:
        rows.append(("last import", _import_line(run)))
        rows += [("", f"error: {e}") for e in run.errors[:5]]
    if st.in_flight:
        rows.append(("", f"started by `sync --no-wait`, recorded by the next sync: {st.in_flight}"))
    rows.append(("pending", _pending_line(st)))
    return rows


def _pending_line(st: IndexStatus) -> str:
    where = f"gs://{st.bucket}"
    if st.bucket_error:
        return f"unknown: {st.bucket_error}"
    if st.pending is None:
        return (f"unknown: the job's summary cannot say which of the {st.digests} digests are "
                "new — next: govctl index sync (it lists the bucket)")  # fmt: skip
    listed = (
        " (listed the bucket: it has no summary of the job's)"
        if st.pending_from == "listing"
        else ""
    )
    tail = " — next: govctl index sync" if st.pending else ""
    if st.watermark is None:
        return f"all {st.digests} digests in {where} (never synced){listed}{tail}"
    return (f"{st.pending} of {st.digests} digests in {where} were processed after the last "
            f"sync ({render.when(st.watermark)}){listed}{tail}")  # fmt: skip


@app.command()
def sync(
    project: Project = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Follow the import to its end with progress."),
    ] = True,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Import every digest again and remove every document no repository accounts "
            "for (lists the data store's documents).",
        ),
    ] = False,
    json: Json = False,
) -> None:
    """Bring the data store in line with the digests: import what changed, remove what left.

    Digests new or rewritten since the last sync are imported (a JSONL manifest of
    `text/plain` documents under `_index/imports/`); repositories that left the feed leave
    the index. With nothing changed nothing is imported. Exit 1 when the import failed or any
    document could not be imported.
    """
    cfg = settings(project)
    cfg.require_project()
    from govctl.services import index

    began = time.monotonic()
    with render.counter("documents") as update:
        said = _Progress(cfg.index.data_store, update)
        try:
            result = index.sync(cfg, wait=wait, full=full, progress=said)
        except KeyboardInterrupt:
            if said.started is None:
                raise
            render.info(f"\nStopped watching; import {said.started} goes on.")
            render.info("Follow: govctl index status (the next sync records it)")
            raise typer.Exit(130) from None
    if json:
        render.json_out(render.plain(result))
    else:
        _say_sync(result, time.monotonic() - began)
    if result.run is not None:
        _raise_if_failed(result.run)


def _say_sync(result: SyncResult, seconds: float) -> None:
    if result.settled:
        render.info(result.settled)
    render.info(result.reason)
    if result.listed is not None:
        render.info(f"listed {result.listed} digests: {result.changed} new or changed")
    if not result.feed_known:
        render.info("the feed the last run used is gone: no repository is removed this time")
    if result.purged or result.removed:
        stale = f", {result.stale} no repository accounts for" if result.stale else ""
        render.out(f"Removed {len(result.removed)} repositories that left the feed "
                   f"({result.purged} documents purged{stale})")  # fmt: skip
    run = result.run
    if run is None:
        render.out("Nothing to import.")
    elif not run.done:
        render.out(run.name)
        render.info("started; follow it with `govctl index status`; the next sync records it")
    else:
        took = validate.format_duration(seconds)
        render.out(f"Import {run.state} in {took}: {run.success_count} imported, "
                   f"{run.failure_count} failed of {run.total_count}")  # fmt: skip
        for error in run.errors[:10]:
            render.out(f"  {error}")


class _Progress:
    """Says once that the import started, then counts its documents."""

    def __init__(self, data_store: str, update: Callable[[int, int], None]) -> None:
        self.data_store = data_store
        self.update = update
        self.started: str | None = None  # the import's name, once it has started

    def __call__(self, run: ImportRun) -> None:
        if self.started is None:
            self.started = run.name
            render.info(f"importing into {self.data_store}: {run.name}")
        if run.total_count:
            self.update(run.success_count + run.failure_count, run.total_count)


def _raise_if_failed(run: ImportRun) -> None:
    if run.state == "failed":
        raise GovctlError(
            f"the import failed: {run.errors[0] if run.errors else 'no reason given'}",
            fix="check the bucket and the data store with `govctl index status`",
        )
    if run.failure_count:
        raise GovctlError(
            f"{run.failure_count} of {run.total_count} documents could not be imported",
            fix="see the errors above; nothing was recorded, so the next `govctl index sync` "
            "imports them again",
        )


def _results(text: str) -> int:
    """-n of search: 1 to the API's page limit (the service's MAX_RESULTS)."""
    from govctl.services.index import MAX_RESULTS

    return validate.integer(text, "-n", 1, MAX_RESULTS)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Words to look for.", show_default=False)],
    project: Project = None,
    limit: Annotated[
        int,
        typer.Option(
            "-n",
            "--limit",
            metavar="N",
            help="How many results (1-100).",
            parser=_results,
        ),
    ] = 5,
    json: Json = False,
) -> None:
    """Run one query and print the top results: repository and snippet."""
    from govctl.services import index

    query = index.check_query(query, limit)
    cfg = settings(project)
    cfg.require_project()
    with render.progress(f"searching {cfg.index.data_store}"):
        hits, total = index.search(cfg, query, limit)
    if json:
        results = [render.plain(h) for h in hits]
        render.json_out({"query": query, "total": total, "results": results})
        return
    if not hits:
        render.info(f"no results for {query!r} — is the repository's digest imported? "
                    "`govctl index status`")  # fmt: skip
        return
    render.table(["#", "repository", "snippet"],
                 [[i, _named(h), h.snippet] for i, h in enumerate(hits, 1)])  # fmt: skip
    render.info(f"{len(hits)} of {total} results")


def _named(hit: Hit) -> str:
    """The repository, and which part of its digest matched when it has several."""
    return hit.repository if hit.parts == 1 else f"{hit.repository} (part {hit.part}/{hit.parts})"


@app.command()
def create(project: Project = None) -> None:
    """Create the data store (`[index] data_store`) if it does not exist."""
    cfg = settings(project)
    cfg.require_project()
    from govctl.services import index

    with render.progress(f"creating data store {cfg.index.data_store}"):
        store, created = index.ensure_data_store(cfg)
    render.out(f"{'created' if created else 'exists'}  {store.name}")
    if created:
        render.info("next: govctl index sync")
