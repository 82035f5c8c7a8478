"""The one flow of every command that changes a project from a plan (`deploy`, `setup`,
`alerts set`; `destroy` is the same flow over a plan whose every line is a deletion).

Steps, in order:

1. **plan** — the service reads the current state and works out the changes (reads only,
   a spinner on stderr while it does).
2. **show** — the plan's warnings on stderr, then the plan itself: ``render.plan`` for people,
   or its JSON (``--json``) — chosen in one place, ``render.display``.
3. **problems** — any, and the apply is refused: exit 1, each problem with its fix.
4. **nothing to do** — no change: said, exit 0.
5. **--dry-run** — stop here, "dry run: nothing written"; with ``--exit-code`` the exit status
   says whether there was something to apply (3) or not (0), like ``terraform plan
   -detailed-exitcode``.
6. **confirm** — unless ``-y``: ask on a terminal; without one, refuse (exit 2).
7. **prepare** — optional, the command's own last step before writing (deploy builds its image
   and plans again, pinned to the digest).
8. **apply** — the service makes the changes it planned (a spinner), and each thing done is
   said on stderr, then what it could not do without stopping (warnings).

A command describes its plan with a :class:`Step` and calls :func:`run`, once per plan it
applies (`setup --alert-email` runs two); :func:`finish` then turns ``--exit-code`` into the
exit status.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Generic, TypeVar

import typer

from govctl import render
from govctl.cli.options import confirm
from govctl.errors import UsageError

if TYPE_CHECKING:
    from govctl.services.plan import Applied, Planned

EXIT_CHANGES = 3  # --dry-run --exit-code: there is something to apply

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the plan and stop; writes nothing.")]
ExitCode = Annotated[
    bool,
    typer.Option(
        "--exit-code", help="With --dry-run: exit 3 when there are changes, 0 when there are none."
    ),
]

P = TypeVar("P", bound="Planned")


@dataclass(frozen=True)
class Options:
    """The flags every planning command takes."""

    dry_run: bool = False
    exit_code: bool = False
    yes: bool = False
    json: bool = False

    def __post_init__(self) -> None:
        if self.exit_code and not self.dry_run:
            raise UsageError("--exit-code needs --dry-run")


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"  # nothing to apply
    DRY_RUN = "dry run"  # changes shown, not applied
    APPLIED = "applied"


@dataclass(frozen=True)
class Step(Generic[P]):
    """What a command plugs into the flow."""

    verb: str  # "deploy": the refusal reads "cannot deploy: …"
    read: Callable[[], P]  # makes the plan; reads only
    apply: Callable[[P], Applied]
    reading: str = "reading the current state"
    unchanged: str = "no changes"
    # Said after the plan is shown to people (not with --json), e.g. "apply builds it first".
    said: Callable[[P], None] | None = None
    prepare: Callable[[P], P] | None = None  # after confirmation, before apply


def run(step: Step[P], options: Options) -> tuple[P, Outcome]:
    """Plan, show, check, confirm and apply; the plan applied (or shown) and what happened."""
    with render.progress(step.reading):
        planned = step.read()
    plan = planned.plan
    for warning in plan.warnings:
        render.warn(warning)
    render.display(plan, as_json=options.json, human=render.plan, to_json=type(plan).to_dict)
    if step.said is not None and not options.json:
        step.said(planned)
    if plan.problems:
        raise plan.refusal(step.verb)
    if not plan.has_changes:
        render.info(step.unchanged)
        return planned, Outcome.UNCHANGED
    if options.dry_run:
        render.info("dry run: nothing written")
        return planned, Outcome.DRY_RUN
    confirm(options.yes, "Apply?", alternative="--dry-run to only see the plan")
    if step.prepare is not None:
        planned = step.prepare(planned)
    with render.progress("applying"):
        applied = step.apply(planned)
    for line in applied.done:
        render.info(line)
    for line in applied.warnings:
        render.warn(line)
    return planned, Outcome.APPLIED


def finish(outcomes: Iterable[Outcome], options: Options) -> None:
    """With ``--dry-run --exit-code``: exit 3 when any plan had something to apply."""
    if options.exit_code and any(o is Outcome.DRY_RUN for o in outcomes):
        raise typer.Exit(EXIT_CHANGES)
