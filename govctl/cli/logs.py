"""`govctl logs`: the job's log entries, filtered from the settings, read or followed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from govctl import render, render_run, validate
from govctl.cli import complete
from govctl.cli.options import Json, Project, Region, settings, whole
from govctl.errors import UsageError

if TYPE_CHECKING:
    from govctl.config import Config
    from govctl.render_run import EntryPrinter
    from govctl.services.executions import Execution

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")


def _filter(flag: str, metavar: str, help: str) -> Any:
    """A filter option: a value that narrows the entries, in the help's Filters panel."""
    return typer.Option(flag, metavar=metavar, help=help, show_default=False,
                        rich_help_panel="Filters")  # fmt: skip


def _switch(flag: str, help: str) -> Any:
    return typer.Option(flag, help=help, rich_help_panel="Filters")


ExecutionName = Annotated[
    str | None, typer.Option("--execution", "-e", metavar="NAME", show_default=False,
                             help="Only this execution's entries.", rich_help_panel="Filters",
                             autocompletion=complete.executions)
]  # fmt: skip
Latest = Annotated[bool, _switch("--latest", "Only the newest execution's.")]
Errors = Annotated[bool, _switch("--errors", "Only ERROR and worse.")]
Severity = Annotated[
    str | None, _filter("--severity", "LEVEL", "Only LEVEL and worse (e.g. WARNING).")
]
Since = Annotated[str | None, _filter("--since", "DUR", "Only the last DUR (e.g. 30m, 1h, 2d).")]
From = Annotated[
    str | None, _filter("--from", "TS", "From this time (ISO 8601; local if no zone).")
]
To = Annotated[str | None, _filter("--to", "TS", "Up to this time.")]
Grep = Annotated[str | None, _filter("--grep", "TEXT", "Only entries containing TEXT anywhere.")]
Scheduler = Annotated[
    bool, _switch("--scheduler", "The scheduler's attempts instead of the job's logs.")
]
Lines = Annotated[
    int, typer.Option("--lines", "-n", metavar="N", help="How many entries (newest last).",
                      parser=whole("-n", 1, 10_000))
]  # fmt: skip
Follow = Annotated[
    bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C stops).")
]
ShowFilter = Annotated[
    bool, typer.Option("--show-filter", help="Print the Cloud Logging filter and stop.")
]


@app.command()
def logs(
    execution: ExecutionName = None,
    latest: Latest = False,
    errors: Errors = False,
    severity: Severity = None,
    since: Since = None,
    from_: From = None,
    to: To = None,
    grep: Grep = None,
    scheduler: Scheduler = False,
    lines: Lines = 50,
    follow: Follow = False,
    show_filter: ShowFilter = False,
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

    count = lines
    _exclusive(errors=errors, severity=severity, since=since, range_=bool(from_ or to),
               scheduler=scheduler, execution=execution, latest=latest, follow=follow)  # fmt: skip
    min_severity = "ERROR" if errors else validate.severity(severity) if severity else None
    start, end = _time_range(since, from_, to)
    name = ex_service.check_name(execution, "--execution") if execution else None
    if grep is not None and not grep.strip():
        raise UsageError("invalid --grep '': expected some text to look for")

    cfg = settings(project, region)
    project_id = cfg.require_project()
    target = ex_service.resolve(cfg, name) if latest or name else None
    query = service.Query(
        region=cfg.region,
        job=cfg.job.name,
        schedule=cfg.schedule.name,
        execution=target.name if target else None,
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
    elif scheduler:
        _scheduler(cfg, filter_, count, json)
    elif follow:
        _follow(project_id, filter_, count, target, render_run.EntryPrinter(json))
    else:
        _read(project_id, filter_, count, render_run.EntryPrinter(json))


def _exclusive(
    *,
    errors: bool,
    severity: str | None,
    since: str | None,
    range_: bool,
    scheduler: bool,
    execution: str | None,
    latest: bool,
    follow: bool,
) -> None:
    """Refuse flags that exclude each other (exit 2, before any call)."""
    rules = [
        (errors and severity, "--errors and --severity exclude each other (--errors is "
         "--severity ERROR)"),
        (since and range_, "--since and --from/--to exclude each other"),
        (scheduler and (execution or latest), "--scheduler shows the scheduler's attempts: "
         "drop --execution/--latest"),
        (scheduler and follow, "--scheduler lists the attempts; it does not follow (drop -f)"),
        (execution and latest, "give --execution NAME or --latest, not both"),
    ]  # fmt: skip
    for broken, message in rules:
        if broken:
            raise UsageError(message)


def _time_range(
    since: str | None, from_: str | None, to: str | None
) -> tuple[datetime | None, datetime | None]:
    start = datetime.now(UTC) - validate.duration(since, "--since") if since else None
    if from_:
        start = validate.timestamp(from_, "--from")
    end = validate.timestamp(to, "--to") if to else None
    if start and end and end <= start:
        raise UsageError(f"--to {to} is not after the start of the range")
    return start, end


def _read(project: str, filter_: str, count: int, printer: EntryPrinter) -> None:
    from govctl.services import logs as service

    entries = service.read(project, filter_, count)
    for entry in entries:
        printer(entry)
    if not entries and not printer.as_json:
        render.info(f"no entries match: {filter_}")


def _follow(
    project: str, filter_: str, backlog: int, target: Execution | None, printer: EntryPrinter
) -> None:
    from govctl.services import executions as ex_service
    from govctl.services import logs as service

    if target is not None and target.done:
        _read(project, filter_, backlog, printer)
        render.info(f"execution {target.name} has {target.status}: nothing more to follow")
        return
    ended = None
    if target is not None:
        watched = target

        def ended() -> bool:
            return ex_service.refresh(watched, patient=True).done

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
        final = ex_service.refresh(target)
        render.info(f"execution {final.name} has {final.status}")


def _scheduler(cfg: Config, filter_: str, count: int, as_json: bool) -> None:
    from govctl.services import executions as ex_service
    from govctl.services import logs as service

    entries = service.read(cfg.require_project(), filter_, count)
    recent = ex_service.recent(cfg, 50) if entries else []
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
