"""`govctl alerts`: e-mail when an execution fails, when none succeeds for a while, or when the
scheduler cannot start the job (Cloud Monitoring alert policies)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from govctl import render, validate
from govctl.cli import flow
from govctl.cli.options import Json, Project, Region, Yes, settings
from govctl.errors import UsageError

app = typer.Typer(
    help="E-mail alerts on failed, missing or unstarted runs (Cloud Monitoring).",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
)  # fmt: skip


@app.callback()
def _group() -> None:
    """E-mail alerts on failed, missing or unstarted runs (Cloud Monitoring)."""


def _stale_after(value: str) -> timedelta:
    from govctl.services.alerts import MAX_STALE_AFTER, MIN_STALE_AFTER

    result = validate.duration(value, "--stale-after")
    if not MIN_STALE_AFTER <= result <= MAX_STALE_AFTER or result.total_seconds() % 60:
        raise UsageError(
            f"invalid --stale-after {value!r}: expected whole minutes from 2m to 24h30m, "
            "Cloud Monitoring's range for metric-absence conditions (such as 26h or 90m)"
        )
    return result


@app.command("set")
def set_(
    email: Annotated[
        list[str] | None,
        typer.Option(
            "--email",
            help="Send alerts to this address (repeatable) [default: the addresses already set].",
            show_default=False,
        ),
    ] = None,
    stale_after: Annotated[
        str | None,
        typer.Option(
            "--stale-after",
            metavar="DUR",
            help="Alert when no execution succeeded for this long (2m to 24h30m) [default: "
            "the current window, or two intervals of the schedule, at most 24h30m].",
            show_default=False,
        ),
    ] = None,
    project: Project = None,
    region: Region = None,
    dry_run: flow.DryRun = False,
    exit_code: flow.ExitCode = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Create or update the e-mail channels and the three alert policies of the job.

    The policies: an execution **failed**; **no execution succeeded** within `--stale-after`;
    a **scheduler attempt failed**. Each e-mail says which govctl command to run. Shows the
    plan first, like `deploy`; run again with the same input and nothing is written.
    """
    options = flow.Options(dry_run=dry_run, exit_code=exit_code, yes=yes, json=json)
    emails = validate.emails(email) if email else None
    window = _stale_after(stale_after) if stale_after is not None else None
    cfg = settings(project, region)
    cfg.require_project()

    from govctl.services import alerts as service

    step = flow.Step(
        "set alerts", lambda: service.plan(cfg, emails, window), service.apply,
        reading="reading the current alerts",
    )  # fmt: skip
    _, outcome = flow.run(step, options)
    flow.finish([outcome], options)
    if outcome is flow.Outcome.APPLIED:
        render.info("next: govctl alerts show")


@app.command()
def show(project: Project = None, region: Region = None, json: Json = False) -> None:
    """The notification channels and alert policies of the project, and whether each is on."""
    cfg = settings(project, region)
    cfg.require_project()

    from govctl.services import alerts as service

    with render.progress("reading the alerts"):
        view = service.show(cfg)
    data = view.to_dict()
    if json:
        render.json_out(data)
        return
    on = {True: "enabled", False: "disabled"}
    render.table(
        ["channel", "type", "state", "managed"],
        [
            (c["email"] or c["display_name"], c["type"], on[c["enabled"]],
             "govctl" if c["managed"] else "-")
            for c in data["channels"]
        ],
    )  # fmt: skip
    render.out()
    render.table(
        ["policy", "state", "condition", "notifies"],
        [
            (p["display_name"], on[p["enabled"]],
             "; ".join(c["kind"] for c in p["conditions"]), ", ".join(p["channels"]) or "-")
            for p in data["policies"]
        ],
    )  # fmt: skip
    if not data["policies"]:
        render.info("no alert policies: run `govctl alerts set --email ADDRESS`")
