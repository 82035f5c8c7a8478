"""`govctl logs`: the job's log entries, filtered from the settings, read or followed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from govctl import render, render_run, validate
from govctl.cli.options import Json, Project, Region, settings
from govctl.errors import UsageError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

Filters = "Filters"


@app.command()
def logs(
    execution: Annotated[
        str | None,
        typer.Option(
            "--execution",
            "-e",
            metavar="NAME",
            help="Only this execution's entries.",
            show_default=False,
            rich_help_panel=Filters,
        ),
    ] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="Only the newest execution's.", rich_help_panel=Filters)
    ] = False,
    errors: Annotated[
        bool, typer.Option("--errors", help="Only ERROR and worse.", rich_help_panel=Filters)
    ] = False,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity",
            metavar="LEVEL",
            help="Only LEVEL and worse (e.g. WARNING).",
            show_default=False,
            rich_help_panel=Filters,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DUR",
            help="Only the last DUR (e.g. 30m, 1h, 2d).",
            show_default=False,
            rich_help_panel=Filters,
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TS",
            help="From this time (ISO 8601; local if no zone).",
            show_default=False,
            rich_help_panel=Filters,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="TS",
            help="Up to this time.",
            show_default=False,
            rich_help_panel=Filters,
        ),
    ] = None,
    grep: Annotated[
        str | None,
        typer.Option(
            "--grep",
            metavar="TEXT",
            help="Only entries containing TEXT anywhere.",
            show_default=False,
            rich_help_panel=Filters,
        ),
    ] = None,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler",
            help="The scheduler's attempts instead of the job's logs.",
            rich_help_panel=Filters,
        ),
    ] = False,
    lines: Annotated[
        str, typer.Option("--lines", "-n", metavar="N", help="How many entries (newest last).")
    ] = "50",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C stops).")
    ] = False,
    show_filter: Annotated[
        bool, typer.Option("--show-filter", help="Print the Cloud Logging filter and stop.")
    ] = False,
    project: Project = None,
    region: Region = None,
    json: Json = False,
) -> None:
    """The job's log entries: one compact line each (local time, severity, task, message).

    The Cloud Logging filter is built from the settings (`--show-filter` prints it).
    `-f` follows; following one execution stops by itself once it has ended.
    """
    from govctl.services import executions as ex_service
    from govctl.services import logs as service

    count = validate.integer(lines, "-n", 1, 10_000)
    if errors and severity:
        raise UsageError(
            "--errors and --severity exclude each other (--errors is --severity ERROR)"
        )
    if since and (from_ or to):
        raise UsageError("--since and --from/--to exclude each other")
    if scheduler and (execution or latest):
        raise UsageError("--scheduler shows the scheduler's attempts: drop --execution/--latest")
    if scheduler and follow:
        raise UsageError("--scheduler lists the attempts; it does not follow (drop -f)")
    if execution and latest:
        raise UsageError("give --execution NAME or --latest, not both")
    min_severity = "ERROR" if errors else validate.severity(severity) if severity else None
    start = end = None
    if since:
        start = datetime.now(UTC) - validate.duration(since, "--since")
    if from_:
        start = validate.timestamp(from_, "--from")
    if to:
        end = validate.timestamp(to, "--to")
    if start and end and end <= start:
        raise UsageError(f"--to {to} is not after the start of the range")
    name = ex_service.check_name(execution, "--execution") if execution else None
    if grep is not None and not grep.strip():
        raise UsageError("invalid --grep '': expected some text to look for")

    cfg = settings(project, region)
    project_id = cfg.require_project()
    target = None
    if latest or name:
        target = ex_service.resolve(cfg, name)
        name = target.name
    query = service.Query(
        region=cfg.region,
        job=cfg.job.name,
        schedule=cfg.schedule.name,
        execution=name,
        min_severity=min_severity,
        since=start,
        until=end,
        grep=grep,
        scheduler=scheduler,
    )
    filter_ = service.build_filter(query)
    if show_filter:
        render.out(filter_)
        render.info(f"gcloud logging read '{filter_}' --project {project_id} --limit {count}")
        return
    if scheduler:
        _scheduler(cfg, filter_, count, json)
        return
    printer = render_run.EntryPrinter(json)
    if not follow:
        entries = service.read(project_id, filter_, count)
        for entry in entries:
            printer(entry)
        if not entries and not json:
            render.info(f"no entries match: {filter_}")
        return
    _follow(project_id, filter_, count, target, printer)


def _follow(project: str, filter_: str, backlog: int, target: Any, printer: Any) -> None:
    from govctl.gcp import executions
    from govctl.services import logs as service

    ended = None
    if target is not None and target.done:
        for entry in service.read(project, filter_, backlog):
            printer(entry)
        render.info(f"execution {target.name} has {target.status}: nothing more to follow")
        return
    if target is not None:
        full = target.full

        def ended() -> bool:
            return executions.get(full, patient=True).done

    try:
        for item in service.follow(
            project, filter_, backlog=backlog, ended=ended, check_every=service.FOLLOW_CHECK_S
        ):
            if isinstance(item, service.Notice):
                render.info(item.message)
            else:
                printer(item)
    except KeyboardInterrupt:
        return  # Ctrl-C is how one stops following: not an error
    if target is not None:
        final = executions.get(target.full)
        render.info(f"execution {final.name} has {final.status}")


def _scheduler(cfg: Any, filter_: str, count: int, as_json: bool) -> None:
    from govctl.gcp import executions
    from govctl.services import logs as service

    project = cfg.require_project()
    entries = service.read(project, filter_, count)
    recent = executions.list_for_job(cfg.job_path, limit=50) if entries else []
    attempts = service.scheduler_attempts(entries, recent)
    if as_json:
        for a in attempts:
            render_run.json_line(a)
        return
    if not attempts:
        render.info(f"no scheduler attempts match: {filter_}")
        return
    render.table(
        ["fired", "execution", "status"],
        [(render_run.local(a.time), a.execution or "-", a.status) for a in attempts],
    )
