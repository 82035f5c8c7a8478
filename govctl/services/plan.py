"""The plan model every changing command shares (`deploy`, `setup`, `alerts set`, and
`destroy` to come): resources, each to create, update, delete or leave unchanged (field by
field), the problems that stop an apply, and notes and warnings for the operator.

A command's service returns a plan that *has* a :class:`Plan` (its ``plan`` attribute) plus
what its own ``apply`` needs, typed; ``govctl.cli.flow`` takes it through the one flow
(show, problems, ``--dry-run``, ``--exit-code``, confirm, apply, report) and
``render.plan`` draws it (``--json`` prints :meth:`Plan.to_dict`: stable snake_case keys).

What apply must find unchanged (an etag, a metageneration, an update time) is kept, typed, by
the command's plan beside the shared one: apply writes read-modify-write with it, so a change
made between plan and apply is refused, never overwritten.

A deletion is an ordinary resource line: ``Action.DELETE``, made with :func:`deleted`, whose
changes list what goes away (``old`` set, ``new`` None); it is counted in ``to_delete`` and
drawn ``-``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from govctl import validate
from govctl.errors import GovctlError


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


CREATE, UPDATE, DELETE, UNCHANGED = Action.CREATE, Action.UPDATE, Action.DELETE, Action.UNCHANGED


@dataclass(frozen=True)
class Change:
    field: str
    old: object  # None when the resource (or the field) does not exist yet
    new: object  # None when it goes away
    note: str | None = None  # said after the new value, e.g. "commit 1c2d3e4" (not in JSON)


@dataclass(frozen=True)
class ResourcePlan:
    kind: str  # "run job", "scheduler", "iam", "api", "bucket", …
    name: str
    action: Action
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Something the command needs but does not make, with the fix; it stops the apply."""

    what: str
    fix: str


def resource(kind: str, name: str, exists: bool, changes: tuple[Change, ...]) -> ResourcePlan:
    """A resource to create (``exists`` False), update (changes) or leave unchanged."""
    action = CREATE if not exists else UPDATE if changes else UNCHANGED
    return ResourcePlan(kind, name, action, changes)


def deleted(kind: str, name: str, fields: Mapping[str, object] | None = None) -> ResourcePlan:
    """A resource to delete; ``fields`` are what the operator should see go (old values)."""
    changes = tuple(Change(k, v, None) for k, v in (fields or {}).items())
    return ResourcePlan(kind, name, DELETE, changes)


def shown(value: object) -> object:
    """A field value as the operator writes it (4Gi, 6h, lists)."""
    if isinstance(value, timedelta):
        return validate.format_duration(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def has_changes(resources: Iterable[ResourcePlan]) -> bool:
    return any(r.action != UNCHANGED for r in resources)


@dataclass(frozen=True)
class Plan:
    """What a command would change in a project, and what stops or qualifies it."""

    project: str
    region: str
    resources: tuple[ResourcePlan, ...]
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()  # said with the plan
    warnings: tuple[str, ...] = ()  # said before it, on stderr
    # The command's own JSON keys, after region (deploy: image, commit, build).
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return has_changes(self.resources)

    def count(self, action: Action) -> int:
        return sum(r.action == action for r in self.resources)

    def refusal(self, verb: str) -> GovctlError:
        """The error that stops an apply with problems: ``cannot VERB: what; … — fixes``."""
        return GovctlError(
            f"cannot {verb}: " + "; ".join(p.what for p in self.problems),
            fix="; ".join(dict.fromkeys(p.fix for p in self.problems)),
        )

    def to_dict(self) -> dict[str, object]:
        """The plan as JSON-ready data (stable snake_case keys)."""
        return {
            "project": self.project,
            "region": self.region,
            **self.details,
            "resources": [
                {
                    "kind": r.kind,
                    "name": r.name,
                    "action": r.action.value,
                    "changes": [
                        {"field": c.field, "old": shown(c.old), "new": shown(c.new)}
                        for c in r.changes
                    ],
                }
                for r in self.resources
            ],
            "summary": {
                "to_add": self.count(CREATE),
                "to_change": self.count(UPDATE),
                "to_delete": self.count(DELETE),
                "unchanged": self.count(UNCHANGED),
            },
            "problems": [{"what": p.what, "fix": p.fix} for p in self.problems],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Applied:
    """What an apply did, resource by resource ("created run job X", …), and what it could
    not do but did not stop for."""

    done: tuple[str, ...]
    warnings: tuple[str, ...] = ()


class Planned(Protocol):
    """A command's plan: the shared :class:`Plan`, and whatever its apply needs besides."""

    @property
    def plan(self) -> Plan: ...
