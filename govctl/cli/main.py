"""The `govctl` command: the typer app, its command groups, and how failures are reported.

Groups are imported only when invoked (or listed by ``--help``) and their modules import
no Google library at module level, so ``govctl --help`` stays fast (a test checks it).

Exit status: 0 ok; 1 a :class:`GovctlError` (one line on stderr: what failed and the fix)
or an unexpected error ("internal error: …"); 2 bad usage; 130 interrupted.
``GOVCTL_DEBUG=1`` also prints the traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer

from govctl import __version__, render
from govctl.cli.group import Group, finish
from govctl.errors import GovctlError

# command group -> "module:Typer attribute". Add a group here; the module is loaded lazily.
GROUPS: dict[str, str] = {
    # in the order of the operator's loop: set up, deploy, run, watch, price, repair
    "init": "govctl.cli.init:app",
    "config": "govctl.cli.config:app",
    "setup": "govctl.cli.setup:app",
    "secrets": "govctl.cli.secrets:app",
    "deploy": "govctl.cli.deploy:app",
    "run": "govctl.cli.run:app",
    "executions": "govctl.cli.executions:app",
    "logs": "govctl.cli.logs:app",
    "schedule": "govctl.cli.schedule:app",
    "status": "govctl.cli.status:app",
    "doctor": "govctl.cli.doctor:app",
    "alerts": "govctl.cli.alerts:app",
    "index": "govctl.cli.index:app",
    "cost": "govctl.cli.cost:app",
    "destroy": "govctl.cli.destroy:app",
    "local": "govctl.cli.local:app",
    "emulator": "govctl.cli.emulator:app",
}


class LazyGroup(Group):
    """Loads a group's module the first time the group is looked up, and finishes its help
    (examples, flags) as every govctl command's is; a group of commands gets the same
    did-you-mean as this one."""

    # Typed Any: typer vendors click privately (typer._click) and exposes no Context type.
    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return own + [name for name in GROUPS if name not in own]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in GROUPS:
            module_name, _, attr = GROUPS[cmd_name].partition(":")
            sub_app = getattr(importlib.import_module(module_name), attr)
            sub_app.info.cls = sub_app.info.cls or Group  # used when the app is a group
            command = finish(typer.main.get_command(sub_app), cmd_name)
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="govctl",
    cls=LazyGroup,
    help="Operate the govreposcrape ingestion pipeline on Google Cloud (Cloud Run Jobs).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are markdown: wrapped lines join, `code` shows
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        render.out(f"govctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Operate the govreposcrape ingestion pipeline on Google Cloud (Cloud Run Jobs)."""


def _debug() -> bool:
    return os.environ.get("GOVCTL_DEBUG", "") not in ("", "0")


class _Warnings(logging.Handler):
    """govctl's own warnings (e.g. "retrying with backoff" from an adapter) on stderr, where
    render says everything that is not data; the layers below log, they never print."""

    def emit(self, record: logging.LogRecord) -> None:
        render.warn(record.getMessage())


def _say_warnings() -> None:
    logger = logging.getLogger("govctl")
    if not any(isinstance(h, _Warnings) for h in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))
        logger.propagate = False  # a root handler of the host program must not repeat them


def invoke(command: Any, argv: Sequence[str] | None = None) -> int:
    """Run a (typer-built) click command the way `govctl` runs; return the exit status."""
    _say_warnings()
    from govctl.services import command_scope

    try:
        with command_scope():
            rv: Any = command.main(
                args=list(argv) if argv is not None else None,
                prog_name="govctl",
                standalone_mode=False,
            )
    except typer.TyperException as err:  # click's usage errors (exit 2) and friends
        ctx = getattr(err, "ctx", None)
        if getattr(err, "exit_code", 1) == 2 and hasattr(err, "format_message"):
            # One line, like every other bad input: what was wrong, and where help is.
            where = f" (`{ctx.command_path} --help`)" if ctx is not None else ""
            render.error(" ".join(err.format_message().split()) + where)
        else:
            err.show()  # type: ignore[attr-defined]
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        render.info("aborted")
        return 130
    except GovctlError as err:
        if _debug():
            traceback.print_exc()
        render.error(str(err))
        return err.exit_code
    except Exception as err:
        if _debug():
            traceback.print_exc()
            render.error(f"internal error: {type(err).__name__}: {err}")
        else:
            render.error(f"internal error: {type(err).__name__}: {err}, rerun with GOVCTL_DEBUG=1")
        return 1
    return rv if isinstance(rv, int) else 0


def command() -> Any:
    """The `govctl` click command (its groups load when looked up)."""
    return finish(typer.main.get_command(app), "")


def main(argv: Sequence[str] | None = None) -> int:
    return invoke(command(), argv)


def quiet_python_support_notices() -> None:
    """Hide google-api-core's notice that this Python nears its end of life.

    Every client library checks at import (google/api_core/_python_version_support.py, from
    365 days before the Python's end of life, 90 from google-api-core 2.44): a command that
    imports five clients printed five copies of one FutureWarning before its own output.
    ``python -W …`` or ``PYTHONWARNINGS`` (any warning option) leaves the notices on.
    """
    if not sys.warnoptions:
        warnings.filterwarnings(
            "ignore", category=FutureWarning, module=r"google\.api_core\._python_version_support"
        )


def run() -> None:
    """The console-script entry point."""
    quiet_python_support_notices()
    code = main()
    main_thread = threading.main_thread()
    if code == 130 or any(not t.daemon and t is not main_thread for t in threading.enumerate()):
        _leave_now(code)
    sys.exit(code)


def _leave_now(code: int) -> NoReturn:
    """Exit without joining threads still blocked in a cloud call (and, after Ctrl-C, without
    the interpreter's half-second of tearing down the gRPC and Google libraries).

    A command abandons its thread-pool workers when it ends early (Ctrl-C, or a first read
    that says the endpoint is down: :mod:`govctl.threads`). At exit Python would join them
    (``concurrent.futures`` registers that), and the process would live on until their calls
    reached their deadlines. The command has already cleaned up (its ``finally`` blocks ran
    on the way out of :func:`main`); what is left is output to flush.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
