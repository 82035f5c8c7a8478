"""`govctl executions list|show|cancel`: the job's executions."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from govctl import render, render_run
from govctl.cli import complete
from govctl.cli.options import Json, Project, Region, Yes, settings, whole
from govctl.errors import UsageError

if TYPE_CHECKING:
    from govctl.services.executions import Details, Task

app = typer.Typer(
    help="List, show and cancel the job's executions.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)

Name = Annotated[
    str | None,
    typer.Argument(metavar="NAME", help="Execution name.", show_default=False,
                   autocompletion=complete.executions),
]  # fmt: skip
Latest = Annotated[bool, typer.Option("--latest", help="The newest execution.")]


@app.callback()
def _group() -> None:
    """List, show and cancel the job's executions."""


@app.command("list")
def list_(
    project: Project = None,
    region: Region = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            metavar="N",
            help="How many, newest first.",
            parser=whole("--limit", 1, 1000),
        ),
    ] = 20,
    json: Json = False,
) -> None:
    """The newest executions: status, start (local time), duration, tasks ok/failed/cancelled."""
    from govctl.services import executions as service

    cfg = settings(project, region)
    items = service.recent(cfg, limit)
    now = datetime.now(UTC)
    if json:
        render.json_out([service.summary_json(e, now) for e in items])
        return
    if not items:
        render.info(f"job {cfg.job.name} has no executions yet; start one: govctl run")
        return
    render.table(
        ["name", "status", "started", "duration", "tasks ok/failed/cancelled"],
        render_run.execution_rows(items, now),
    )


@app.command()
def show(
    name: Name = None,
    latest: Latest = False,
    project: Project = None,
    region: Region = None,
    json: Json = False,
) -> None:
    """One execution: its status, a row per task, the run-report totals and its log filter."""
    from govctl.services import executions as service

    chosen = service.choose(name, latest)
    cfg = settings(project, region)
    d = service.details(cfg, service.resolve(cfg, chosen))
    now = datetime.now(UTC)
    render.display(d, as_json=json, human=lambda d: _show(d, now), to_json=lambda d: d.to_dict(now))


def _show(d: Details, now: datetime) -> None:
    e = d.execution
    render.fields(
        {
            "execution": e.name,
            "status": e.status + (f" ({e.reason})" if e.reason and e.status == "failed" else ""),
            "started": render_run.local(e.started or e.created),
            "completed": render_run.local(e.completed) if e.completed else "-",
            "duration": render_run.elapsed(e.duration_s(now)),
            "tasks": f"{e.succeeded} ok, {e.failed} failed, {e.cancelled} cancelled, "
            f"{e.running} running of {e.task_count}",
            "repositories": render_run.repositories_line(d.totals)
            .split("repositories", 1)[1]
            .strip(),
        }
    )
    render.out()
    render.table(
        ["task", "status", "exit code", "cause", "retries", "duration"],
        [
            (t.index, t.status, _exit(t), _cause(t), t.retried,
             render_run.elapsed(t.duration_s(now)))
            for t in d.tasks
        ],
    )  # fmt: skip
    if d.totals.failures:
        render.out()
        render.table(
            ["failed repository", "reason", "stage"],
            [(f.get("repo"), f.get("reason"), f.get("stage")) for f in d.totals.failures[:20]],
        )
    render.out()
    render.out("Log filter (Logs Explorer, or gcloud logging read):")
    render.out(f"  {d.log_filter}")
    if d.execution.log_uri:
        render.out(f"Console: {d.execution.log_uri}")
    if e.status == "failed":
        render.info(f"Next: govctl logs --execution {e.name} --errors")


def _cause(task: Task) -> str:
    """Why a failed task failed, from its fields (govctl.services.causes)."""
    from govctl.services import causes

    return causes.of_task(task).value if task.status == "failed" else "-"


def _exit(task: Task) -> str:
    if task.term_signal:
        return f"signal {task.term_signal}"
    return "-" if task.exit_code is None else str(task.exit_code)


@app.command()
def cancel(
    name: Name = None,
    latest: Latest = False,
    project: Project = None,
    region: Region = None,
    yes: Yes = False,
) -> None:
    """Cancel a running execution and wait until it is cancelled (asks unless `-y`)."""
    from govctl.services import executions as service

    chosen = service.choose(name, latest)
    cfg = settings(project, region)
    execution = service.resolve(cfg, chosen)
    if execution.done:
        render.info(f"execution {execution.name} has already {execution.status}; nothing to do")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"not cancelling {execution.name} without confirmation",
                fix="pass -y (no terminal to ask on)",
            )
        typer.confirm(
            f"Cancel execution {execution.name} ({execution.running} tasks running)?", abort=True
        )
    with render.progress(f"cancelling {execution.name}"):
        final = service.cancel(execution)
    if final.done:
        render.out(
            f"cancelled {final.name} ({final.cancelled} tasks cancelled, "
            f"{final.succeeded} had succeeded)"
        )
    else:
        render.warn(
            f"{final.name} is still {final.status}; check: govctl executions show {final.name}"
        )
