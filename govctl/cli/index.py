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
    from govctl.services.index import ImportRun, IndexStatus

app = typer.Typer(
    add_completion=False,
    rich_markup_mode="markdown",
    no_args_is_help=True,
    help="The search index over the bucket: `status`, `sync`, `search`, `create`.",
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
    """The data store, its documents, the last import and how many digests wait for one.

    A digest waits when its object was written after the last successful import began.
    """
    cfg = settings(project)
    cfg.require_project()
    from govctl.services import index

    with render.progress("reading the data store, its imports and the bucket"):
        st = index.status(cfg)
    if json:
        render.json_out(_status_json(st))
        return
    rows: list[tuple[str, str]] = []
    if not st.exists:
        rows.append(("data store", f"{st.data_store} ({st.location}) missing — create it with "
                     "`govctl index create`"))  # fmt: skip
    else:
        rows.append(("data store", f"{st.data_store} ({st.location}) · {st.documents} documents"))
        run = st.last_import
        if run is None:
            rows.append(("last import", "none yet — next: govctl index sync"))
        else:
            rows.append(("last import", _import_line(run)))
            rows += [("", f"error: {e}") for e in run.errors[:5]]
        if st.bucket_error:
            rows.append(("pending", f"unknown: {st.bucket_error}"))
        elif st.last_success is None:
            rows.append(("pending", f"all {st.digests} digests in gs://{st.bucket} (no "
                         "successful import yet) — next: govctl index sync"))  # fmt: skip
        else:
            tail = " — next: govctl index sync" if st.pending else ""
            rows.append(("pending", f"{st.pending} of {st.digests} digests in gs://{st.bucket} "
                         f"are newer than the last successful import{tail}"))  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        render.out(f"{key:<{width}}  {value}")


@app.command()
def sync(
    project: Project = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Follow the import to its end with progress."),
    ] = True,
    json: Json = False,
) -> None:
    """Import the bucket's digests (`gs://BUCKET/*/*.md`) into the data store, incrementally.

    New and changed digests are (re)indexed; nothing is removed. Exit 1 when the import
    failed or any digest could not be imported.
    """
    cfg = settings(project)
    cfg.require_project()
    from govctl.services import index

    began = time.monotonic()
    with render.counter("documents") as update:
        said = _Progress(f"importing {index.import_uri(cfg)} into {cfg.index.data_store}", update)
        try:
            run = index.sync(cfg, wait=wait, progress=said)
        except KeyboardInterrupt:
            if said.started is None:
                raise
            render.info(f"\nStopped watching; import {said.started} goes on.")
            render.info("Follow: govctl index status")
            raise typer.Exit(130) from None
    if json:
        render.json_out(render.plain(run))
    elif not run.done:
        render.out(run.name)
        render.info("started; follow it with `govctl index status`")
        return
    else:
        took = validate.format_duration(time.monotonic() - began)
        render.out(f"Import {run.state} in {took}: {run.success_count} imported, "
                   f"{run.failure_count} failed of {run.total_count}")  # fmt: skip
        for error in run.errors[:10]:
            render.out(f"  {error}")
    _raise_if_failed(run)


class _Progress:
    """Says once that the import started, then counts its documents."""

    def __init__(self, first: str, update: Callable[[int, int], None]) -> None:
        self.first = first
        self.update = update
        self.started: str | None = None  # the import's name, once it has started

    def __call__(self, run: ImportRun) -> None:
        if self.started is None:
            self.started = run.name
            render.info(self.first)
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
            f"{run.failure_count} of {run.total_count} digests could not be imported",
            fix="see the errors above; `govctl index status` keeps the last import's",
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
                 [[i, h.repository, h.snippet] for i, h in enumerate(hits, 1)])  # fmt: skip
    render.info(f"{len(hits)} of {total} results")


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
