"""How executions, their live progress and log entries look (a part of ``govctl.render``).

The live view goes to stderr: on a terminal a rich ``Live`` display redrawn in place,
otherwise one line per change (a task's new state, new repository counts), so a CI log
reads as a story. Results (summaries, tables, log lines) go to stdout. Times read as
``render.when`` says (govctl.render_time): local, the zone named, the date when not today;
the live view's followed lines give the time of day only, under a header that names the zone.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from govctl import render

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

    from govctl.services.executions import Execution, Task
    from govctl.services.logs import LogEntry
    from govctl.services.reports import Totals
    from govctl.services.run import Finished
    from govctl.services.watch import Snapshot

STATUS_STYLE = {
    "running": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "pending": "dim",
}
SEVERITY_STYLE = {
    "DEBUG": "dim",
    "INFO": "",
    "NOTICE": "cyan",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold red",
    "ALERT": "bold red",
    "EMERGENCY": "bold red",
    "DEFAULT": "dim",
}
MAX_TASK_ROWS = 12
SHOWN_FIELDS = ("repo", "reason", "stage")


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c.width = 1000  # piped or captured: whole lines, never wrapped or cut
    return c


def local(moment: datetime | None) -> str:
    """An event's time (seconds) in the operator's zone: ``render.when``."""
    return render.when(moment)


def elapsed(seconds: float | None) -> str:
    """``0:41``, ``12:05``, ``1:02:03``."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _styled(text: str, style: str) -> str:
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/]" if style else escape(text)


# --------------------------------------------------------------------------- log entries


def entry_text(entry: LogEntry, *, with_date: bool = True, with_task: bool = True) -> Text:
    """One compact line: time, severity (coloured), task, message, then repo/reason/stage.
    ``with_date=False``: the time of day alone (under a header that named day and zone)."""
    from rich.text import Text

    when = render.when(entry.timestamp, clock_only=not with_date)
    line = Text(when + " ", style="dim")
    severity = entry.severity if entry.severity != "DEFAULT" else "-"
    line.append(f"{severity:<8} ", style=SEVERITY_STYLE.get(entry.severity, ""))
    if entry.task_index is not None and with_task:
        line.append(f"task {entry.task_index:<3} ", style="cyan")
        if entry.attempt:  # a retry: its lines are not the first attempt's
            line.append(f"(attempt {entry.attempt + 1}) ", style="cyan")
    line.append(entry.message or _payload_text(entry))
    extra = [f"{k}={entry.fields[k]}" for k in SHOWN_FIELDS if entry.fields.get(k) is not None]
    if extra:
        line.append("  " + " ".join(extra), style="dim")
    return line


def _payload_text(entry: LogEntry) -> str:
    return render.compact(entry.fields) if entry.fields else ""


def json_line(data: Any) -> None:
    """One JSON object on one line of stdout (a stream of records, for jq)."""
    import json

    sys.stdout.write(json.dumps(data, default=render._jsonable, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class EntryPrinter:
    """Prints entries to stdout: compact lines, or one JSON object per line."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._console = None if as_json else console()

    def __call__(self, entry: LogEntry) -> None:
        if self.as_json:
            from govctl.services.logs import entry_dict

            json_line(entry_dict(entry))
        else:
            assert self._console is not None
            self._console.print(entry_text(entry))


# --------------------------------------------------------------------------- live view


def _task_state(task: Task, now: datetime) -> tuple[str, str, str]:
    attempt = f"attempt {task.attempt}" if task.status == "running" or task.retried else ""
    return task.status, attempt, elapsed(task.duration_s(now))


class LiveView:
    """The progress of one execution on stderr, redrawn in place on a terminal."""

    def __init__(self, execution: Execution, *, live: bool | None = None) -> None:
        self.execution = execution
        self._console = console(stderr=True)
        self.live = self._console.is_terminal if live is None else live
        self.snapshot: Snapshot | None = None
        self._said: dict[int, tuple[str, int]] = {}
        self._said_repos: tuple[int, int] | None = None
        self._said_counts = ""
        self._live: Any = None

    def header(self) -> str:
        started = self.execution.started or self.execution.created
        when = render.when(started) if started else "just now"
        n = self.execution.task_count
        return f"Execution {self.execution.name} started {when}, {n} task{'s' * (n != 1)}"

    def __enter__(self) -> LiveView:
        if self.live:
            from rich.live import Live

            self._live = Live(
                get_renderable=self._renderable,
                console=self._console,
                refresh_per_second=4,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            self._console.print(self.header())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.execution = snapshot.execution
        if self.live:
            return  # redrawn by the Live thread
        if len(snapshot.tasks) > MAX_TASK_ROWS:
            self._print_counts(snapshot)
        else:
            self._print_tasks(snapshot)
        repos = snapshot.repositories()
        if repos is not None and repos != self._said_repos:
            self._said_repos = repos
            eta = snapshot.eta_s()
            tail = f"   ETA {elapsed(eta)}" if eta is not None and repos[0] < repos[1] else ""
            self._console.print(f" repositories  {repos[0]}/{repos[1]}{tail}")

    def _print_counts(self, snapshot: Snapshot) -> None:
        """Many tasks: their counts when they change, and each failure as it happens."""
        counts: dict[str, int] = {}
        for task in snapshot.tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
            if task.status == "failed" and self._said.get(task.index) != ("failed", task.attempt):
                self._said[task.index] = ("failed", task.attempt)
                self._console.print(f" task {task.index:<3} failed     attempt {task.attempt}")
        text = ", ".join(f"{counts[s]} {s}" for s in STATUS_STYLE if counts.get(s))
        if text != self._said_counts:
            self._said_counts = text
            self._console.print(f" tasks  {text}")

    def _print_tasks(self, snapshot: Snapshot) -> None:
        for task in snapshot.tasks:
            said = (task.status, task.attempt)
            if self._said.get(task.index) == said or task.status == "pending":
                continue
            self._said[task.index] = said
            status, attempt, took = _task_state(task, snapshot.now)
            shown = took if status != "running" else ""
            self._console.print(
                f" task {task.index:<3} {status:<10} {attempt:<10} {shown}".rstrip()
            )

    def line(self, renderable: RenderableType) -> None:
        """A followed log line, above the live display."""
        self._console.print(renderable)

    def _renderable(self) -> RenderableType:
        from datetime import UTC

        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = datetime.now(UTC)
        rows = Table.grid(padding=(0, 2))
        rows.add_column()
        rows.add_column()
        rows.add_column()
        rows.add_column(justify="right")
        snap = self.snapshot
        tasks = snap.tasks if snap else []
        order = {"running": 0, "failed": 1, "cancelled": 2, "pending": 3, "succeeded": 4}
        shown = sorted(tasks, key=lambda t: (order.get(t.status, 5), t.index))[:MAX_TASK_ROWS]
        for task in sorted(shown, key=lambda t: t.index):
            status, attempt, took = _task_state(task, now)
            rows.add_row(
                f" task {task.index}", _styled(status, STATUS_STYLE.get(status, "")), attempt, took
            )
        hidden = [t for t in tasks if t not in shown]
        parts: list[Any] = [self.header(), rows]
        if hidden:
            counts: dict[str, int] = {}
            for t in hidden:
                counts[t.status] = counts.get(t.status, 0) + 1
            parts.append(" … " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        if not tasks:
            parts.append(" waiting for the tasks to start")
        repos = snap.repositories() if snap else None
        if repos is None and any(t.status == "running" for t in tasks):
            parts.append(Text(" repositories  counted once the tasks have planned", style="dim"))
        if repos is not None:
            done, total = repos
            bar = Table.grid(padding=(0, 2))
            eta = snap.eta_s(now) if snap else None  # counts down between polls
            eta_text = f"ETA {elapsed(eta)}" if eta is not None and done < total else ""
            bar.add_row(
                " repositories",
                ProgressBar(total=max(total, 1), completed=done, width=24),
                f"{done}/{total}",
                eta_text,
            )
            parts.append(bar)
        return Group(*parts)


# --------------------------------------------------------------------------- results


def repositories_line(totals: Totals) -> str:
    if totals.error:
        return f" repositories  unknown: {totals.error}"
    if totals.tasks == 0:
        return " repositories  unknown (no task wrote a run report)"
    text = (
        f" repositories  {totals.processed} processed, {totals.unchanged} unchanged, "
        f"{totals.failed} failed"
    )
    text += f", {totals.rejected} rejected" if totals.rejected else ""
    return text + (f", {totals.backing_off} backing off" if totals.backing_off else "")


def outcome_line(execution: Execution, now: datetime | None = None) -> str:
    took = elapsed(execution.duration_s(now))
    n = execution.task_count
    if execution.status == "succeeded":
        return f"Execution {execution.name} succeeded in {took} ({n} of {n} tasks succeeded)"
    if execution.status == "cancelled":
        return (
            f"Execution {execution.name} CANCELLED after {took} "
            f"({execution.succeeded} succeeded, {execution.cancelled} cancelled)"
        )
    if execution.status == "failed":
        failed = f"{execution.failed} of {n} tasks failed"
        return f"Execution {execution.name} FAILED after {took} ({failed})"
    return f"Execution {execution.name} {execution.status} for {took}"


def _how(task: Task) -> str:
    from govctl.services import causes

    return "  ".join(x for x in (causes.describe(task), f"attempt {task.attempt}") if x)


def _causes(errors: list[LogEntry]) -> list[LogEntry]:
    """The lines that say why: the job's closing summary line (it carries ``counts``) only
    when there is nothing else."""
    causes = [e for e in errors if "counts" not in e.fields]
    return causes or errors


def failed_tasks_lines(failed: list[tuple[Task, list[LogEntry]]], limit: int = 10) -> list[Text]:
    """Each failed task's exit and its last ERROR lines; tasks that failed the same way
    (same exit, same messages) are said once, as a group."""
    from rich.text import Text

    groups: dict[tuple[str, tuple[str, ...]], list[tuple[Task, list[LogEntry]]]] = {}
    for task, errors in failed:
        causes = _causes(errors)
        key = (_how(task), tuple(e.message for e in causes) or (task.message,))
        groups.setdefault(key, []).append((task, causes))
    lines: list[Text] = []
    for (how, _), members in list(groups.items())[:limit]:
        task, causes = members[0]
        indexes = [str(t.index) for t, _ in members]
        who = f"task {indexes[0]}" if len(members) == 1 else "tasks " + ", ".join(indexes[:8])
        if len(members) > 8:
            who += f" and {len(members) - 8} more"
        lines.append(Text(f" {who}  {how}", style="bold"))
        for entry in causes:
            line = Text("   ")
            line.append_text(entry_text(entry, with_task=len(members) == 1))
            lines.append(line)
        if not causes:
            lines.append(Text(f"   {task.message or '(no ERROR log line from this task)'}"))
    if len(groups) > limit:
        lines.append(Text(f" … and {len(groups) - limit} more kinds of failure"))
    return lines


def finished(result: Finished) -> None:
    """How a watched run ended, on stdout: the outcome, the repositories, each failed task."""
    lines: list[Any] = [outcome_line(result.execution), repositories_line(result.totals)]
    print_lines(lines + failed_tasks_lines(result.failed))


def print_lines(lines: list[Any]) -> None:
    c = console()
    for line in lines:
        c.print(line)


def execution_rows(items: list[Execution], now: datetime) -> list[tuple[str, ...]]:
    return [
        (
            e.name,
            e.status,
            local(e.started or e.created),
            elapsed(e.duration_s(now)),
            f"{e.succeeded}/{e.failed}/{e.cancelled}",
        )
        for e in items
    ]


def status_markup(status: str) -> str:
    return _styled(status, STATUS_STYLE.get(status, ""))
