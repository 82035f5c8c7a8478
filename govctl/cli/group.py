"""What every govctl command group has in common: a misspelt command gets a did-you-mean, and
each command's help is finished the same way (its examples, flags without a type).

``govctl.cli.main`` applies both to every group and command as it loads them, so a command
module needs nothing of this.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

from govctl import validate
from govctl.cli import examples


class Group(TyperGroup):
    """A typer group whose unknown command is one line naming the group, with the closest of
    its commands (``govctl deplyo`` → did you mean deploy?)."""

    # Typed Any: typer vendors click privately (typer._click) and exposes no Context type.
    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if (
            not name.startswith("-")
            and self.get_command(ctx, name) is None
            and not ctx.resilient_parsing  # completing: click offers the commands itself
        ):
            close = validate.suggest(name, self.list_commands(ctx))
            ctx.fail(f"unknown command {name!r} for `{ctx.command_path}`"
                     + (f" — {close}" if close else ""))  # fmt: skip
        return super().resolve_command(ctx, args)


def finish(command: Any, path: str) -> Any:
    """``command`` (a typer-built click command, or group and its commands) with the examples
    of ``path`` ("schedule set") at the end of its help, and its flags shown without a type.

    Typer's rich help gives every option a type column, flags included (``--dry-run <bool>``);
    a flag takes no value, so it shows none, as click's plain help does (an empty metavar is
    what typer prints for the column). An argument is named in capitals (``CRON``).
    """
    command.epilog = examples.epilog(path) or command.epilog
    for param in [*command.params, _help_option(command)]:
        if param is None or param.metavar is not None:  # None: the command has no -h
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "argument":  # CRON, as click writes it; not {cron}
            param.metavar = param.name.upper()
    for name, sub in getattr(command, "commands", {}).items():
        finish(sub, f"{path} {name}".strip())
    return command


def _help_option(command: Any) -> Any:
    """The command's ``-h/--help`` option: click makes it on first use, then keeps it."""
    import typer

    return command.get_help_option(typer.Context(command, help_option_names=["-h", "--help"]))
