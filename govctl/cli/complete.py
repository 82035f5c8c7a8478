"""Shell completion of names that live in the project: executions, secrets.

`govctl --install-completion` installs typer's completion script for the shell; each TAB then
runs ``govctl`` with ``_GOVCTL_COMPLETE=complete_bash`` (zsh, fish, powershell likewise) and
the words typed so far. The functions here answer for one argument or option each.

Completion happens while someone waits at a prompt, so it is quick and quiet: the settings
are read as every command reads them (``--project``/``--region`` typed before the TAB count),
the lookup gets :data:`DEADLINE_S` (``GOVCTL_COMPLETION_DEADLINE`` seconds, for a slow link)
and is abandoned after it, and any failure — no project,
no credentials, the cloud unreachable, a bad govctl.toml — completes nothing, with nothing on
the terminal (stderr, Python's and the gRPC library's, is closed for the lookup). Nothing is
cached: a name just created completes on the next TAB.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from govctl.config import Config

DEADLINE_S = 2.0
DEADLINE_ENV = "GOVCTL_COMPLETION_DEADLINE"
LIMIT = 50  # executions offered: the newest


def executions(ctx: typer.Context, incomplete: str) -> list[str]:
    """The job's newest executions, newest first."""

    def names(cfg: Config) -> list[str]:
        from govctl.services import executions as service

        return [e.name for e in service.recent(cfg, LIMIT)]

    return _matching(_lookup(ctx, names), incomplete)


def secret_ids(ctx: typer.Context, incomplete: str) -> list[str]:
    """The project's Secret Manager secrets."""

    def ids(cfg: Config) -> list[str]:
        from govctl.services import secrets as service

        return service.secret_ids(cfg)

    return _matching(_lookup(ctx, ids), incomplete)


def secret_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The job's ``[job] secrets`` variables (from the settings; no call)."""
    return _matching(_lookup(ctx, lambda cfg: sorted(cfg.job.secrets)), incomplete)


def _matching(found: list[str], incomplete: str) -> list[str]:
    return [name for name in found if name.startswith(incomplete)]


def _lookup(ctx: typer.Context, find: Callable[[Config], list[str]]) -> list[str]:
    """``find(settings)`` within the deadline, in a daemon thread the process will not wait
    for; ``[]`` on any failure or when the deadline passes."""
    found: list[str] = []

    def work() -> None:
        with contextlib.suppress(BaseException):  # nothing may reach the shell
            found.extend(find(_settings(ctx)))

    worker = threading.Thread(target=work, name="govctl-complete", daemon=True)
    with _quiet(until=lambda: not worker.is_alive()):
        worker.start()
        worker.join(_deadline())
    return list(found) if not worker.is_alive() else []


def _deadline() -> float:
    try:
        return min(max(float(os.environ.get(DEADLINE_ENV, DEADLINE_S)), 0.1), 60.0)
    except ValueError:
        return DEADLINE_S


def _settings(ctx: typer.Context) -> Config:
    """The command's settings, as the command would resolve them, said nowhere."""
    from govctl import config, services

    project, region = ctx.params.get("project"), ctx.params.get("region")
    cfg = config.load(
        project=project if isinstance(project, str) else None,
        region=region if isinstance(region, str) else None,
    )
    services.connect(cfg)
    return cfg


@contextlib.contextmanager
def _quiet(until: Callable[[], bool]) -> Iterator[None]:
    """No warning, log line or library chatter on the terminal while completing: govctl's own
    warnings are muted and file descriptor 2 points at /dev/null (gRPC's C core writes there
    directly). Both stay so if the lookup is still running (``until()`` is false) when the
    block ends: the process is about to print its completions and exit."""
    logging.disable(logging.CRITICAL)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # read when grpc is first imported
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        if until():
            os.dup2(saved, 2)
            logging.disable(logging.NOTSET)
        os.close(saved)
