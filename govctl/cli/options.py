"""Options every cloud command shares, and the settings they resolve to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from govctl import config, render, validate

Project = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", metavar="PROJECT", help="Google Cloud project [default: govctl.toml, "
        "GOVCTL_PROJECT or gcloud's core/project].", show_default=False, rich_help_panel="Settings"
    ),
]  # fmt: skip
Region = Annotated[
    str | None,
    typer.Option(
        "--region", metavar="REGION", help=f"Cloud Run region [default: govctl.toml, "
        f"GOVCTL_REGION, gcloud's run/region or {config.DEFAULT_REGION}].", show_default=False,
        rich_help_panel="Settings"
    ),
]  # fmt: skip
Json = Annotated[bool, typer.Option("--json", help="Print JSON (stable snake_case keys).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def whole(where: str, low: int, high: int) -> Callable[[str], int]:
    """The parser of a whole-number option (click runs it): out of range or not a number is
    validate.integer's one-line usage error naming the flag and the range (exit 2)."""
    return lambda text: validate.integer(text, where, low, high)


def number(where: str, low: float, high: float, form: str) -> Callable[[str], float]:
    """The parser of a numeric option: validate.number's usage error, ``form`` as expected."""
    return lambda text: validate.number(text, where, low, high, form)


def settings(project: str | None = None, region: str | None = None, **flags: Any) -> config.Config:
    """The resolved settings (their warnings said once, on stderr); Google clients made
    from now on talk to where they say (Google, or the emulator)."""
    from govctl import services

    cfg = config.load(project=project, region=region, **flags)
    for warning in cfg.warnings:
        render.warn(warning)
    services.connect(cfg)
    return cfg


def interactive() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    import sys

    return sys.stdin.isatty()


def confirm(yes: bool, question: str, alternative: str | None = None) -> None:
    """Go on when ``-y`` was given or a person says yes; refuse (exit 2) without a terminal."""
    from govctl.errors import GovctlError, UsageError

    if yes:
        return
    if not interactive():
        raise UsageError(
            "refusing to apply without confirmation: stdin is not a terminal",
            fix="pass -y to apply" + (f", or {alternative}" if alternative else ""),
        )
    if not render.confirm(question):
        raise GovctlError("not applied", fix="rerun and answer y, or pass -y")
