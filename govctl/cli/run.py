"""`govctl run`: run the deployed job now and watch it to the end."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from govctl import render, render_run, validate
from govctl.cli.options import Json, Project, Region, settings, whole
from govctl.config import Config
from govctl.errors import GovctlError, UsageError

if TYPE_CHECKING:
    from govctl.render_run import LiveView
    from govctl.services.executions import Execution
    from govctl.services.run import RunRequest

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

N = {"metavar": "N", "show_default": False}


@app.command()
def run(
    project: Project = None,
    region: Region = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            help="Only the first N feed entries.",
            parser=whole("--limit", 1, 10**9),
            **N,
        ),
    ] = None,
    tasks: Annotated[
        int | None,
        typer.Option(
            "--tasks",
            help="Tasks of this run [default: the job's].",
            parser=whole("--tasks", 1, validate.MAX_TASKS),
            **N,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo every repository, changed or not.")
    ] = False,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", metavar="K=V", help="Add an environment variable (repeatable)."),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", metavar="A", help="Append an argument for the job (repeatable)."),
    ] = None,
    task_timeout: Annotated[
        str | None,
        typer.Option(
            "--task-timeout",
            metavar="DUR",
            help="Time limit of each task, e.g. 2h.",
            show_default=False,
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the execution's name once started; return.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Also stream the execution's log lines.")
    ] = False,
    json: Json = False,
) -> None:
    """Run the deployed job now and wait for it, showing its progress.

    `--limit`, `--force` and `--arg` are **appended** to the job's own arguments (Cloud Run's
    `--args` override would replace them). Exit 0 when every task succeeded, 1 otherwise
    (with each failed task's cause). Ctrl-C stops watching; the execution goes on.
    """
    from govctl.services.run import RunRequest

    if no_wait and follow:
        raise UsageError("--no-wait and --follow exclude each other")
    for item in env or ():
        validate.plain_env_name(item.partition("=")[0], "--env name")
    request = RunRequest(
        limit=limit,
        force=force,
        args=tuple(arg or ()),
        env=validate.env_pairs(env or (), "--env"),
        tasks=tasks,
        task_timeout=validate.task_timeout(task_timeout, "--task-timeout")
        if task_timeout is not None
        else None,
    )
    cfg = settings(project, region)
    cfg.require_project()
    _run(cfg, request, no_wait=no_wait, follow=follow, as_json=json)


def _run(cfg: Config, request: RunRequest, *, no_wait: bool, follow: bool, as_json: bool) -> None:
    from govctl.services import executions as ex_service
    from govctl.services import run as run_service
    from govctl.services import watch

    with render.progress(f"starting {cfg.job.name}"):
        execution = run_service.start(cfg.job_path, request)
    if no_wait:
        execution = watch.wait_started(execution)
        if as_json:
            render.json_out(ex_service.summary_json(execution))
        else:
            render.out(execution.name)
        render.info(_hints(execution.name))
        return
    try:
        final = _watch(cfg, execution, follow)
    except GovctlError as err:
        raise GovctlError(
            f"stopped watching execution {execution.name}, which goes on: {err}",
            fix=f"govctl executions show {execution.name}",
        ) from None
    except KeyboardInterrupt:
        render.info(f"\nStopped watching; execution {execution.name} goes on.")
        render.info(_hints(execution.name))
        raise typer.Exit(130) from None
    _finish(cfg, final, as_json)


def _hints(name: str) -> str:
    return f"Follow: govctl logs --execution {name} -f\nCancel: govctl executions cancel {name}"


def _watch(cfg: Config, execution: Execution, follow: bool) -> Execution:
    from govctl.services import watch

    view = render_run.LiveView(execution)
    ended = threading.Event()
    with view:
        follower = _follower(cfg, execution, view, ended) if follow else None
        try:
            for snapshot in watch.watch(
                cfg.require_project(),
                cfg.region,
                cfg.job.name,
                execution,
                poll_s=watch.POLL_S,
                log_poll_s=watch.LOG_POLL_S,
            ):
                view.update(snapshot)
                execution = snapshot.execution
        finally:
            ended.set()
            if follower is not None:
                follower.join(timeout=15)
    return execution


def _follower(
    cfg: Config, execution: Execution, view: LiveView, ended: threading.Event
) -> threading.Thread:
    from govctl.services import logs

    filter_ = logs.execution_filter(cfg.region, cfg.job.name, execution.name)
    since = execution.created or execution.started

    def pump() -> None:
        try:
            for item in logs.follow(
                cfg.require_project(), filter_, since=since, ended=ended.is_set, check_every=0.5
            ):
                if isinstance(item, logs.Notice):
                    view.line(f"[dim]{item.message}[/]")
                else:
                    view.line(render_run.entry_text(item, with_date=False))
        except Exception as err:  # following is a bonus: the wait goes on without it
            view.line(f"[yellow]cannot follow the logs: {err}[/]")

    thread = threading.Thread(target=pump, name="follow", daemon=True)
    thread.start()
    return thread


def _finish(cfg: Config, execution: Execution, as_json: bool) -> None:
    from govctl.services import run as run_service

    result = run_service.finished(cfg, execution)
    render.display(result, as_json=as_json, human=render_run.finished, to_json=type(result).to_dict)
    if not result.succeeded:
        if result.secrets_unreadable:
            render.info("Next: govctl secrets list   (a task could not read a [job] secrets entry)")
        else:
            render.info(f"Next: govctl logs --execution {execution.name} --errors")
        raise typer.Exit(1)
    if not as_json:
        render.info(f"Details: govctl executions show {execution.name}")
