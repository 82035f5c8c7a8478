"""What `govctl doctor` reports: checks, the fixes ``--fix`` can apply, and the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from govctl import config, validate
from govctl.errors import GovctlError
from govctl.gcp import iam, jobs, scheduler, services

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Context:
    """What every check knows besides the facts: the settings, the project, the time."""

    cfg: config.Config
    project: str
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class Action:
    """A fix ``--fix`` can apply."""

    kind: str  # grant_job, grant_project, enable, resume
    target: str  # job path, project id, or scheduler path
    role: str = ""
    member: str = ""
    apis: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "grant_job":
            return f"grant {self.role} to {self.member} on job {jobs.job_id(self.target)}"
        if self.kind == "grant_project":
            return f"grant {self.role} to {self.member} on project {self.target}"
        if self.kind == "enable":
            return f"enable {', '.join(self.apis)} in project {self.target}"
        return f"resume scheduler job {scheduler.schedule_id(self.target)}"

    def apply(self) -> None:
        if self.kind == "grant_job":
            jobs.add_member(self.target, self.role, self.member, None)
        elif self.kind == "grant_project":
            iam.grant_on_project(self.target, self.role, self.member)
        elif self.kind == "enable":
            services.enable(self.target, self.apis)
        else:
            scheduler.resume(self.target)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    evidence: str
    fix: str | None = None
    actions: tuple[Action, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "evidence": self.evidence,
            "fix": self.fix,
            "fixable": [a.describe() for a in self.actions],
        }


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def failing(self) -> int:
        return sum(c.status == FAIL for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.status == WARN for c in self.checks)

    @property
    def actions(self) -> list[Action]:
        seen: list[Action] = []
        for c in self.checks:
            for a in c.actions:
                if a not in seen:
                    seen.append(a)
        return seen


def failed(name: str, err: GovctlError) -> Check:
    return Check(name, FAIL, str(err).split(" — ")[0], err.fix)


def short_api(api: str) -> str:
    return api.removesuffix(".googleapis.com")


def ago(when: datetime, now: datetime) -> str:
    return span((now - when).total_seconds()) + " ago"


def span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def memory_text(job: jobs.JobSpec) -> str:
    mib = job.memory_mib
    return validate.format_memory(mib) if isinstance(mib, int) else mib or "512Mi"


def timeout_s(job: jobs.JobSpec) -> float:
    # Unset means Cloud Run's default of 10 minutes.
    return job.task_timeout.total_seconds() or 600.0
