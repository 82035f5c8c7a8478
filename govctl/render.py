"""The one place that prints.

Data goes to stdout (tables for people, ``--json`` for scripts: stable snake_case keys);
messages, progress and errors go to stderr, so ``govctl … --json | jq`` and
``eval "$(govctl emulator env)"`` see only data. Rich is imported on first use.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

# Every time a person reads is worded by govctl.render_time's rule: `when`, and for a
# schedule's times `scheduled` (its own zone, yours beside it).
from govctl.render_time import day as day
from govctl.render_time import scheduled as scheduled
from govctl.render_time import when as when

if TYPE_CHECKING:
    from rich.console import Console

    from govctl.services.plan import Change, Plan

T = TypeVar("T")


def out(line: str = "") -> None:
    """A line of data on stdout, verbatim (no markup, no wrapping)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """A message for the operator on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def compact(value: Any) -> str:
    """A value on one line: lists and tables as JSON, nothing as "-"."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):  # e.g. a scheduler job's request body
        return value.decode("utf-8", "replace")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False)


def json_out(data: Any) -> None:
    out(to_json(data))


def plain(value: Any) -> Any:
    """A dataclass as a dict (for ``--json``); anything else as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    return str(value)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 1000  # piped or captured: whole values, never cut with "…"
    t = Table(*columns, title=title, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    console.print(t)


def fields(data: Mapping[str, Any]) -> None:
    """One ``key: value`` line per field, keys aligned (a single record, e.g. a status)."""
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        out(f"{key.replace('_', ' '):<{width}}  {_cell(value)}")


@contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on stderr while the block runs (nothing when stderr is not a terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


def console(*, stderr: bool = False) -> Console:
    """A rich console for data (stdout) or messages (stderr). Rich decides about colour: only
    on a terminal, never with ``NO_COLOR`` (no-color.org), always with ``FORCE_COLOR``. Piped or
    captured, lines are whole (never cut or wrapped)."""
    from rich.console import Console

    c = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not c.is_terminal:
        c.width = 1000
    return c


def display(
    data: T,
    *,
    as_json: bool,
    human: Callable[[T], None],
    to_json: Callable[[T], object] | None = None,
) -> None:
    """A command's result, the one way every command chooses: JSON on stdout for ``--json``
    (``to_json(data)``, or ``data`` itself), else ``human(data)`` for people."""
    if as_json:
        json_out(to_json(data) if to_json is not None else data)
    else:
        human(data)


_PLAN_MARK = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}
_PLAN_STYLE = {"create": "green", "update": "yellow", "unchanged": "dim", "delete": "red"}


def _plan_value(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str) and "@sha256:" in value:
        # an image: its repository path and a short digest, as `docker images` shows it
        path, _, digest = value.partition("@sha256:")
        return f"…/{PurePosixPath(path).name}@sha256:{digest[:12]}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _change_line(action: str, change: Change, width: int) -> str:
    from govctl.services.plan import shown

    label = f"      {change.field:<{width}}  "
    new = _plan_value(shown(change.new)) + (f" ({change.note})" if change.note else "")
    if action == "create":
        return label + new
    if action == "delete":  # what goes away
        return label + _plan_value(shown(change.old))
    return f"{label}{_plan_value(shown(change.old))}  →  {new}"


def plan(p: Plan) -> None:
    """A plan like `terraform plan`: ``+`` create, ``~`` update ``old → new``, ``-`` delete
    (with what goes), ``=`` unchanged; then its notes, and the counts."""
    from rich.text import Text

    from govctl.services.plan import CREATE, DELETE, UNCHANGED, UPDATE

    c = console()
    out(f"Plan for project {p.project}, {p.region}")
    out()
    kind_width = max([9, *(len(r.kind) for r in p.resources)])
    for res in p.resources:
        suffix = "   (unchanged)" if res.action == "unchanged" else ""
        head = f"  {_PLAN_MARK[res.action]} {res.kind:<{kind_width}} {res.name}{suffix}"
        c.print(Text(head, style=_PLAN_STYLE[res.action]))
        width = max((len(ch.field) for ch in res.changes), default=0)
        for change in res.changes:
            out(_change_line(res.action, change, width))
    if p.notes:
        out()
    for note in p.notes:
        out(f"  note: {note}")
    out()
    deleted = f"{p.count(DELETE)} to delete, " if p.count(DELETE) else ""
    out(f"{p.count(CREATE)} to add, {p.count(UPDATE)} to change, {deleted}"
        f"{p.count(UNCHANGED)} unchanged.")  # fmt: skip


def ask(question: str) -> str:
    """A line the operator types on the terminal (the question on stderr)."""
    import typer

    return str(typer.prompt(question, default="", show_default=False, err=True))


def confirm(question: str) -> bool:
    """Ask on the terminal (stderr); no is the default."""
    import typer

    return typer.confirm(question, default=False, err=True)


@contextmanager
def counter(message: str) -> Iterator[Any]:
    """Progress of a count (done of total) on stderr: a bar on a terminal, otherwise a line
    each time the count changes. Yields ``update(done, total)``."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        said: list[tuple[int, int]] = []

        def say(done: int, total: int) -> None:
            if not said or said[-1] != (done, total):
                said.append((done, total))
                info(f" {message}  {done}/{total}")

        yield say
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn(message), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task(message, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update
