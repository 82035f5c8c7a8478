"""What a destroy plan is made of: the deletions, their kinds and where a grant is held."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from govctl.config import Config
from govctl.services import retention
from govctl.services.plan import Applied, Plan, ResourcePlan, deleted


@dataclass(frozen=True)
class Scope:
    """What goes besides what destroy always deletes: each needs its own flag."""

    bucket: bool = False
    service_account: bool = False
    secrets: bool = False


class Kind(enum.Enum):
    """What a deletion deletes; its value is the plan line's kind. Declared in the order
    deletions are made: each after whatever uses it, and the service account last."""

    SCHEDULER = "scheduler"
    EXECUTION = "execution"
    JOB = "run job"
    POLICY = "policy"
    CHANNEL = "channel"
    DATA_STORE = "data store"
    INDEX_RECORD = "index record"
    LIFECYCLE = retention.LIFECYCLE
    IMAGE = "image"
    CLEANUP = retention.CLEANUP
    REPOSITORY = "repository"
    GRANT = "iam"
    SECRET = "secret"
    BUCKET = "bucket"
    ACCOUNT = "service account"


class Holder(enum.Enum):
    """Where a grant to remove is held."""

    BUCKET = "bucket"
    SECRET = "secret"
    PROJECT = "project"
    REPOSITORY = "repository"


@dataclass(frozen=True)
class Deletion:
    """One line of the plan and what apply needs to delete it."""

    kind: Kind
    target: str  # the resource's name as its API knows it (a grant: the holder's)
    line: ResourcePlan
    role: str = ""  # a grant's role and member
    member: str = ""
    holder: Holder | None = None
    count: int | None = None  # a bucket's objects

    @property
    def label(self) -> str:
        return f"{self.kind.value} {self.line.name}"


@dataclass(frozen=True)
class DestroyPlan:
    plan: Plan
    deletions: tuple[Deletion, ...]
    bucket: str

    @property
    def project(self) -> str:
        return self.plan.project

    @property
    def deletes_bucket(self) -> bool:
        return any(d.kind is Kind.BUCKET for d in self.deletions)

    @property
    def objects(self) -> int | None:
        """How many objects go with the bucket (None: it stays)."""
        return next((d.count for d in self.deletions if d.kind is Kind.BUCKET), None)


@dataclass(frozen=True)
class Failure:
    label: str  # "channel ops@example.org": what is left
    reason: str  # the error, with its fix


@dataclass(frozen=True)
class Destroyed(Applied):
    """What apply did, and each deletion that failed with its reason."""

    failed: tuple[Failure, ...] = ()


def plan_line(kind: Kind, name: str, fields: Mapping[str, object] | None = None) -> ResourcePlan:
    return deleted(kind.value, name, fields)


def job_member(cfg: Config) -> str:
    return f"serviceAccount:{cfg.job.service_account}"


# What a reader finds: deletions, and notes (what stays, and why).
Found = tuple[list[Deletion], list[str]]
