"""`govctl doctor [--fix] [-y] [--json]`: check a deployment; exit 1 when a check fails."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from govctl import render
from govctl.cli.options import Json, Project, Region, Yes, settings
from govctl.errors import GovctlError, UsageError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

LABEL = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def _show(report: object) -> None:
    from govctl.services.doctor import Report

    assert isinstance(report, Report)
    width = max((len(c.name) for c in report.checks), default=0)
    indent = " " * (1 + 6 + width + 2)
    for c in report.checks:
        render.out(f" {LABEL[c.status]:<5} {c.name:<{width}}  {c.evidence}")
        if c.fix and c.status != "ok":
            render.out(f"{indent}fix: {c.fix}")
    warnings = report.warnings
    render.out(f"{report.failing} failing, {warnings} warning{'' if warnings == 1 else 's'}.")


def _confirm(yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to apply fixes without confirmation: stdin is not a terminal",
            fix="pass -y to apply them",
        )
    return bool(typer.confirm("Apply these fixes?", default=False, err=True))


@app.command()
def doctor(
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the fixes govctl can make, after asking.")
    ] = False,
    yes: Yes = False,
    json: Json = False,
    project: Project = None,
    region: Region = None,
) -> None:
    """Check the project, APIs, IAM, job, scheduler, recent runs and bucket; say what is
    wrong and the command that fixes it. Exit 0 when nothing fails, 1 otherwise.

    `--fix` grants missing roles (on the job, or the scheduler's service agent on the
    project), enables APIs and resumes a paused scheduler, after showing what it will do.
    """
    from govctl.services import doctor as service

    cfg = settings(project, region)
    cfg.require_project()
    with render.progress("Checking…"):
        report = service.diagnose(cfg)
    if fix and report.actions:
        if not json:
            _show(report)
        render.info("Fixes govctl can apply:")
        for action in report.actions:
            render.info(f"  + {action.describe()}")
        if not _confirm(yes):
            raise GovctlError("no fix applied", fix="rerun with --fix and answer y, or pass -y")
        for action, err in service.repair(report.actions):
            render.info(
                f"{'failed' if err else 'done'}: {action.describe()}" + (f" ({err})" if err else "")
            )
        render.info("Checking again…")
        report = service.diagnose(cfg)
    elif fix:
        render.info("nothing for --fix to apply")
    if json:
        render.json_out(
            {
                "ok": report.failing == 0,
                "failing": report.failing,
                "warnings": report.warnings,
                "checks": [c.as_dict() for c in report.checks],
            }
        )
    else:
        _show(report)
    if report.failing:
        raise typer.Exit(1)
