"""`govctl local run`: the job on this machine, with the deployed job's settings."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from govctl import extras, render
from govctl.cli.options import Project, Region, settings, whole
from govctl.errors import GovctlError, UsageError
from govctl.services import local

app = typer.Typer(
    help="Run the job on this machine.", no_args_is_help=True, add_completion=False,
    rich_markup_mode="markdown",
)  # fmt: skip


@app.callback()
def _group() -> None:
    """Run the job on this machine."""


@app.command()
def run(
    args: Annotated[list[str] | None, typer.Argument(metavar="-- ARGS",
        help="More arguments for `python -m ingestion`, e.g. `-- --force --concurrency 4`.",
        show_default=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N",
        help="Only the first N feed entries.", show_default=False,
        parser=whole("--limit", 1, 10_000_000))] = None,
    sink: Annotated[str | None, typer.Option("--sink", metavar="DIR|gs://BUCKET[/PREFIX]",
        help="Where digests go [default: ./digests].", show_default=False)] = None,
    container: Annotated[bool, typer.Option("--container/--no-container",
        help="In the job's image with podman or docker, or as `python -m ingestion` with this "
        "Python.")] = True,
    image: Annotated[str | None, typer.Option("--image", help="Image to run [default: build "
        "the source tree's Dockerfile as govctl-ingestion:local].", show_default=False)] = None,
    engine: Annotated[str | None, typer.Option("--engine", metavar="podman|docker",
        help="Container engine [default: podman, else docker].", show_default=False)] = None,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", metavar="NAME=VALUE",
        help="Passed to the image build, e.g. BASE=python:3.12-slim (repeatable).",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
        help="Print the commands; run nothing.")] = False,
    project: Project = None,
    region: Region = None,
) -> None:  # fmt: skip
    """Run the ingestion job here with the job's feed, args and env from the settings.

    Runbook: `docker build -t ingestion . && docker run -e REPOS_FEED_URL=… ingestion`.
    Application Default Credentials are mounted read-only, never built into the image.
    Exits with the job's exit status.
    """
    _check(engine, build_arg or [])
    target = local.sink_spec(sink, Path.cwd())
    cfg = settings(project, region)
    extra = list(args or [])
    if container:
        plan = local.container(
            cfg, target, limit, extra, engine=local.find_engine(engine), image=image,
            env=os.environ, source=local.source_root(), build_args=build_arg or [],
        )  # fmt: skip
    else:
        extras.require("job", "`govctl local run --no-container`")
        plan = local.direct(cfg, target, limit, extra)
    for note in plan.notes:
        render.info(note)
    if dry_run:
        _show(plan)
        return
    env = local.environment(cfg, plan, os.environ)
    if not target.startswith("gs://"):
        Path(target).mkdir(parents=True, exist_ok=True)  # the engine would create it as root
    if plan.build_from is not None:
        with local.build_context(plan.build_from) as context:
            _run(local.build_command(plan.run[0], context, build_arg or []), env)
    started = time.time()
    _run(plan.run, env)
    if not target.startswith("gs://"):
        written = [p for p in Path(target).rglob("*.md") if p.stat().st_mtime >= started - 1]
        render.info(f"{len(written)} digest(s) written to {target}")


def _check(engine: str | None, build_args: list[str]) -> None:
    if engine is not None and engine not in local.ENGINES:
        raise UsageError(f"invalid --engine {engine!r}: expected podman or docker")
    for value in build_args:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", value):
            raise UsageError(f"invalid --build-arg {value!r}: expected NAME=VALUE")


def _show(plan: local.Plan) -> None:
    """What would run: the variables (a secret by its reference, never read), the commands."""
    for name in sorted(plan.env):
        render.out(f"{name}={shlex.quote(plan.env[name])}")
    for name, ref in sorted(plan.secrets.items()):
        secret, _, version = ref.partition(":")
        render.out(f"{name}=<Secret Manager: {secret} ({version or 'latest'})>")
    for command in (plan.build, plan.run):
        if command:
            render.out(shlex.join(command))


def _run(command: list[str], env: dict[str, str]) -> None:
    """Run one step with the terminal's stdout/stderr; its failure is govctl's exit status."""
    render.info("+ " + shlex.join(command))
    try:
        status = subprocess.run(command, env=env, check=False).returncode
    except OSError as err:
        raise GovctlError(f"cannot run {command[0]}: {err}") from None
    if status != 0:
        render.error(f"{Path(command[0]).name} exited {status}")
        raise typer.Exit(status)
