"""`govctl alerts`: e-mail when an execution fails, when none succeeds for a while, or when the
scheduler cannot start the job (Cloud Monitoring alert policies)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from govctl import render, validate
from govctl.cli.options import Json, Project, Region, Yes, confirm, settings
from govctl.config import Config
from govctl.errors import UsageError

app = typer.Typer(
    help="E-mail alerts on failed, missing or unstarted runs (Cloud Monitoring).",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
)  # fmt: skip

# Deliberately loose (one @, a dot in the domain, no spaces): Cloud Monitoring has the last say.
_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;.]+")


@app.callback()
def _group() -> None:
    """E-mail alerts on failed, missing or unstarted runs (Cloud Monitoring)."""


def _emails(values: list[str]) -> tuple[str, ...]:
    for value in values:
        if not _EMAIL.fullmatch(value.strip()):
            raise UsageError(
                f"invalid --email {value!r}: expected an e-mail address such as ops@example.org"
            )
    return tuple(dict.fromkeys(v.strip() for v in values))


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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and stop; writes nothing.")
    ] = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Create or update the e-mail channels and the three alert policies of the job.

    The policies: an execution **failed**; **no execution succeeded** within `--stale-after`;
    a **scheduler attempt failed**. Each e-mail says which govctl command to run. Shows the
    plan first, like `deploy`; run again with the same input and nothing is written.
    """
    emails = _emails(email) if email else None
    window = _stale_after(stale_after) if stale_after is not None else None
    cfg = settings(project, region)
    cfg.require_project()
    if apply_alerts(cfg, emails, window, dry_run=dry_run, yes=yes, json=json):
        render.info("next: govctl alerts show")


def apply_alerts(
    cfg: Config,
    emails: tuple[str, ...] | None,
    window: timedelta | None = None,
    *,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> bool:
    """Plan, show, confirm and apply the alerts (``govctl setup`` calls this too); whether
    anything was written. ``emails``/``window`` None keep what is set (see services.alerts)."""
    from govctl.services import alerts as service

    with render.progress("reading the current alerts"):
        plan = service.plan(cfg, emails, window)
    for warning in plan.warnings:
        render.warn(warning)
    if json:
        render.json_out(plan.to_dict())
    else:
        render.plan(plan.to_dict())
    if not plan.has_changes:
        render.info("no changes")
        return False
    if dry_run:
        render.info("dry run: nothing written")
        return False
    confirm(yes, "Apply?", alternative="--dry-run to only see the plan")
    with render.progress("applying"):
        applied = service.apply(plan)
    for line in applied.done:
        render.info(line)
    return True


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
