"""`govctl schedule`: the Cloud Scheduler job that runs the ingestion job — show, set, pause,
resume, trigger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from govctl import render, validate
from govctl.cli.options import Json, Project, Region, Yes, confirm, settings

app = typer.Typer(
    help="Show and change the Cloud Scheduler job that runs the ingestion job.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
)  # fmt: skip


@app.callback()
def _group() -> None:
    """Show and change the Cloud Scheduler job that runs the ingestion job."""


def _local_zone() -> Any:
    return datetime.now().astimezone().tzinfo


def _next_lines(times: list[Any], zone_name: str) -> list[str]:
    """Each fire time in the schedule's zone, yours beside it when it reads differently."""
    return [render.scheduled(f.at, zone_name) + (f"  [{f.note}]" if f.note else "")
            for f in times]  # fmt: skip


@app.command()
def show(
    project: Project = None,
    region: Region = None,
    next_: Annotated[
        int, typer.Option("--next", "-n", min=1, max=100, help="How many fire times to show.")
    ] = 5,
    json: Json = False,
) -> None:
    """The schedule in words, its state, next fire times, last attempt, target and identity.

    Fire times are computed on the schedule's wall clock (DST-aware) and shown in its zone and
    yours; a time that a DST change skips or repeats is marked.
    """
    from govctl.services import schedule as service

    cfg = settings(project, region)
    cfg.require_project()
    view = service.show(cfg, next_)
    if json:
        render.json_out(view.to_dict(_local_zone()))
        return
    s = view.spec
    last = "never"
    if s.last_attempt_time is not None:
        last = render.when(s.last_attempt_time, seconds=False) + f"  {s.status_name or '?'}"
        last += f": {s.status_message}" if s.status_message else ""
    auth = {"oauth": "OAuth token", "oidc": "OIDC token"}.get(s.auth, "no token")
    render.fields(
        {
            "name": view.name,
            "cron": f"{s.cron}  ({view.description})",
            "time_zone": s.time_zone,
            "state": s.state,
            "last_attempt": last,
            "target": f"{s.http_method} {s.uri}",
            "runs_as": f"{s.service_account or '-'} ({auth}"
            + (f", scope {s.scope})" if s.scope else ")"),
        }
    )
    if s.state != "ENABLED":
        render.out(f"next runs     none while {s.state} (govctl schedule resume)")
        return
    render.out("next runs")
    for line in _next_lines(view.next_times, s.time_zone):
        render.out(f"  {line}")


@app.command("set")
def set_(
    cron: Annotated[str, typer.Argument(help='Five-field unix cron, e.g. "0 2 * * *".')],
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone", help="IANA zone [default: the job's current zone].", show_default=False
        ),
    ] = None,
    yes: Yes = False,
    project: Project = None,
    region: Region = None,
) -> None:
    """Change when the job runs: shows old → new and the next 3 fire times, then asks.

    Warns when a fire time falls in a DST gap or overlap, and when runs would overlap (the
    schedule fires more often than recent runs took).
    """  # fmt: skip
    from govctl.services import schedule as service

    cron = validate.cron(cron, "CRON")
    if time_zone is not None:
        time_zone = validate.time_zone(time_zone, "--time-zone")
    cfg = settings(project, region)
    cfg.require_project()
    p = service.propose(cfg, cron, time_zone)
    old, new = p.current, p
    render.out(f"schedule {cfg.schedule.name}")
    if old.cron != new.cron:
        render.out(f"  cron       {old.cron}  →  {new.cron}")
        render.out(f"             ({service.describe(old.cron)}  →  {service.describe(new.cron)})")
    if old.time_zone != new.time_zone:
        render.out(f"  time_zone  {old.time_zone}  →  {new.time_zone}")
    render.out("  next runs")
    for line in _next_lines(p.next_times, p.time_zone):
        render.out(f"    {line}")
    for warning in p.warnings:
        render.warn(warning)
    if not p.changed:
        render.info("no changes")
        return
    confirm(yes, "Apply?")
    updated = service.apply_proposal(cfg, p)
    render.info(f"updated: {updated.cron} ({updated.time_zone})")


@app.command()
def pause(project: Project = None, region: Region = None) -> None:
    """Stop the schedule from firing (pausing a paused schedule is not an error)."""
    from govctl.services import schedule as service

    cfg = settings(project, region)
    cfg.require_project()
    switch = service.pause(cfg)
    if not switch.changed:
        render.info(f"{cfg.schedule.name} was already paused: nothing changed")
        return
    render.info(f"paused {cfg.schedule.name} (was {switch.before}); "
                "resume with `govctl schedule resume`")  # fmt: skip


@app.command()
def resume(project: Project = None, region: Region = None) -> None:
    """Let the schedule fire again (resuming an enabled schedule is not an error)."""
    from govctl.services import schedule as service

    cfg = settings(project, region)
    cfg.require_project()
    switch = service.resume(cfg)
    spec = switch.after
    upcoming = spec.schedule_time
    nxt = f"; next run {render.scheduled(upcoming, spec.time_zone)}" if upcoming else ""
    if not switch.changed:
        render.info(f"{cfg.schedule.name} was already enabled: nothing changed{nxt}")
        return
    render.info(f"resumed {cfg.schedule.name} (was {switch.before}){nxt}")


@app.command()
def trigger(project: Project = None, region: Region = None, json: Json = False) -> None:
    """Fire the scheduler job now, as at its scheduled time, and print the execution it started.

    Unlike `govctl run`, this goes through Cloud Scheduler and its service account, so it
    also proves the schedule's target and permissions work.
    """
    from govctl.services import schedule as service

    cfg = settings(project, region)
    cfg.require_project()
    with render.progress("asking Cloud Scheduler to run the job"):
        result = service.trigger(cfg)
    ex = result.execution
    if json:
        render.json_out({"schedule": cfg.schedule.name, "execution": ex.name,
                         "execution_name": ex.full, "task_count": ex.task_count})  # fmt: skip
        return
    render.out(ex.name)
    render.info(f"{cfg.schedule.name} started execution {ex.name} of {cfg.job.name} "
                f"({ex.task_count} task(s))")  # fmt: skip
    render.info(f"next: govctl executions show {ex.name}")
