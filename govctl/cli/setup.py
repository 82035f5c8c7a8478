"""`govctl setup`: the one-time pieces of a project, planned and shown like `govctl deploy`."""

from __future__ import annotations

from typing import Annotated

import typer

from govctl import render, validate
from govctl.cli import flow
from govctl.cli.options import Json, Project, Region, Yes, settings
from govctl.config import Config
from govctl.errors import GovctlError, UsageError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

NEXT = "next: govctl deploy"


def _alerts_note(cfg: Config) -> None:
    """Offer alerts when none would tell anyone of a failed run (a read; never fatal)."""
    from govctl.services import alerts

    try:
        state = alerts.status(cfg)
    except GovctlError as err:
        render.info(f"alerts not checked ({str(err).split(' — ')[0]})")
        return
    if state.level != "ok":
        render.info(
            f"alerts: {state.summary}; add them with `govctl setup --alert-email ADDRESS` "
            "(or `govctl alerts set --email ADDRESS`)"
        )


@app.command()
def setup(
    project: Project = None,
    region: Region = None,
    with_index: Annotated[
        bool,
        typer.Option(
            "--with-index",
            help="Also enable Discovery Engine and create the Vertex AI Search data store "
            "that indexes the bucket ([index] data_store).",
        ),
    ] = False,
    alert_email: Annotated[
        list[str] | None,
        typer.Option(
            "--alert-email",
            metavar="ADDRESS",
            help="Then set the job's alerts to e-mail this address (repeatable), as "
            "`govctl alerts set --email` does.",
            show_default=False,
        ),
    ] = None,
    dry_run: flow.DryRun = False,
    exit_code: flow.ExitCode = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Enable the APIs and create the service account, the bucket and the image repository;
    grant the service account objects on this bucket and `run.invoker` on this job only.

    Idempotent: shows the plan first (`+` create, `~` update, `=` unchanged) and a second run
    says "nothing to do". Checks that billing is enabled and that you may act as the service
    account (deploy needs it). Without `-y` it asks on a terminal and refuses elsewhere.
    """
    options = flow.Options(dry_run=dry_run, exit_code=exit_code, yes=yes, json=json)
    emails = None
    if alert_email:
        if json:
            raise UsageError(
                "--json and --alert-email exclude each other (each would print its own plan)",
                fix="run `govctl setup --json`, then `govctl alerts set --email ADDRESS --json`",
            )
        emails = validate.emails(alert_email, "--alert-email")
    cfg = settings(project, region)
    cfg.require_project()

    from govctl.services import setup as service

    step = flow.Step(
        "set up", lambda: service.plan(cfg, with_index=with_index), service.apply,
        unchanged="nothing to do",
    )  # fmt: skip
    plan, outcome = flow.run(step, options)
    outcomes = [outcome]
    if emails:
        from govctl.services import alerts

        render.info("")
        alerts_step = flow.Step(
            "set alerts", lambda: alerts.plan(cfg, emails, None), alerts.apply,
            reading="reading the current alerts",
        )  # fmt: skip
        outcomes.append(flow.run(alerts_step, options)[1])
    elif not json:
        _alerts_note(cfg)
    flow.finish(outcomes, options)
    if dry_run:
        return
    if plan.deferred and plan.has_changes:
        # Shown, then applied: nothing is written that the plan did not show, so what
        # could only be read once its API was on is planned by a second run.
        render.info(
            f"next: govctl setup again, to plan {' and '.join(plan.deferred)} now that "
            "their APIs are on; then govctl deploy"
        )
        return
    render.info(NEXT)
