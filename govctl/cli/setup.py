"""`govctl setup`: the one-time pieces of a project, planned and shown like `govctl deploy`."""

from __future__ import annotations

from typing import Annotated

import typer

from govctl import render
from govctl.cli.options import Json, Project, Region, Yes, confirm, settings
from govctl.errors import GovctlError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

NEXT = "next: govctl deploy"


@app.command()
def setup(
    project: Project = None,
    region: Region = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and stop; writes nothing.")
    ] = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Enable the APIs and create the service account, the bucket and the image repository;
    grant the service account objects on this bucket and `run.invoker` on this job only.

    Idempotent: shows the plan first (`+` create, `~` update, `=` unchanged) and a second run
    says "nothing to do". Checks that billing is enabled and that you may act as the service
    account (deploy needs it). Without `-y` it asks on a terminal and refuses elsewhere.
    """
    cfg = settings(project, region)
    cfg.require_project()

    from govctl.services import setup as service

    with render.progress("reading the current state"):
        plan = service.plan(cfg)
    if json:
        render.json_out(plan.to_dict())
    else:
        render.plan(plan.to_dict())
    if plan.problems:
        raise GovctlError(
            "cannot set up: " + "; ".join(p.what for p in plan.problems),
            fix="; ".join(dict.fromkeys(p.fix for p in plan.problems)),
        )
    if not plan.has_changes:
        render.info("nothing to do")
        render.info(NEXT)
        return
    if dry_run:
        render.info("dry run: nothing written")
        return
    confirm(yes, "Apply?", alternative="--dry-run to only see the plan")
    with render.progress("applying"):
        applied = service.apply(plan)
    for line in applied.done:
        render.info(line)
    for line in applied.warnings:
        render.warn(line)
    if plan.deferred:
        # Shown, then applied: nothing is written that the plan did not show, so what
        # could only be read once its API was on is planned by a second run.
        render.info(
            f"next: govctl setup again, to plan {' and '.join(plan.deferred)} now that "
            "their APIs are on; then govctl deploy"
        )
        return
    render.info(NEXT)
