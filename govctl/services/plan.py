"""The plan model that `deploy`, `setup` and `alerts set` share: resources, each to create,
update, delete or leave unchanged (field by field), the problems that stop an apply, and
notes for the operator.

``render.plan`` draws :func:`as_dict`'s data the same way for every command, and ``--json``
prints it: stable snake_case keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from govctl import validate

CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"


@dataclass(frozen=True)
class Change:
    field: str
    old: Any  # None when the resource (or the field) does not exist yet
    new: Any


@dataclass(frozen=True)
class ResourcePlan:
    kind: str  # "run job", "scheduler", "iam", "api", "bucket", …
    name: str
    action: str  # create / update / delete / unchanged
    changes: tuple[Change, ...] = ()
    # What the plan saw, to detect a change between plan and apply.
    etag: Any = None


@dataclass(frozen=True)
class Problem:
    """Something the command needs but does not make, with the fix; it stops the apply."""

    what: str
    fix: str


def resource(
    kind: str, name: str, exists: bool, changes: tuple[Change, ...], etag: Any = None
) -> ResourcePlan:
    action = CREATE if not exists else UPDATE if changes else UNCHANGED
    return ResourcePlan(kind, name, action, changes, etag)


def shown(value: Any) -> Any:
    """A field value as the operator writes it (4Gi, 6h, lists)."""
    if isinstance(value, timedelta):
        return validate.format_duration(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def has_changes(resources: Iterable[ResourcePlan]) -> bool:
    return any(r.action != UNCHANGED for r in resources)


def as_dict(
    project: str,
    region: str,
    resources: Iterable[ResourcePlan],
    problems: Iterable[Problem] = (),
    notes: Iterable[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The plan as JSON-ready data; ``extra`` keys (e.g. deploy's image) come after region."""
    listed = list(resources)
    data: dict[str, Any] = {"project": project, "region": region, **extra}
    data["resources"] = [
        {
            "kind": r.kind,
            "name": r.name,
            "action": r.action,
            "changes": [
                {"field": c.field, "old": shown(c.old), "new": shown(c.new)} for c in r.changes
            ],
        }
        for r in listed
    ]
    data["summary"] = {
        "to_add": sum(r.action == CREATE for r in listed),
        "to_change": sum(r.action == UPDATE for r in listed),
        "to_delete": sum(r.action == DELETE for r in listed),
        "unchanged": sum(r.action == UNCHANGED for r in listed),
    }
    data["problems"] = [{"what": p.what, "fix": p.fix} for p in problems]
    if notes is not None:
        data["notes"] = list(notes)
    return data
