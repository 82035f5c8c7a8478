"""The skip decision, made for the whole shard before any clone.

A repository is redone only when its ``pushedAt`` changed, the digest settings changed
(the stored ``ingest_version`` is the settings fingerprint), or ``--force``. Everything is
decided from one listing of the sink's metadata, so an unchanged repository costs no request
to the git host and no request to storage beyond that listing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingestion.feed import Repo


@dataclass(frozen=True)
class Job:
    """A repository to ingest, with why, and what the sink holds for it (empty when new)."""

    repo: Repo
    why: str  # new | pushed | settings | unknown_pushed_at | forced
    stored: Mapping[str, str]


@dataclass
class Plan:
    to_do: list[Job] = field(default_factory=list)
    unchanged: list[Repo] = field(default_factory=list)

    def why_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(job.why for job in self.to_do).items()))


def decide(
    repo: Repo, stored: Mapping[str, str] | None, fingerprint: str, *, force: bool
) -> str | None:
    """Why ``repo`` must be (re)ingested, or None when it is unchanged."""
    if force:
        return "forced"
    if not stored:
        return "new"
    if stored.get("ingest_version") != fingerprint:
        return "settings"
    if not repo.pushed_at:
        # Without a pushedAt in the feed we cannot tell a change: stay correct, redo it.
        return "unknown_pushed_at"
    if stored.get("pushedAt") != repo.pushed_at:
        return "pushed"
    return None


def make_plan(
    repos: Sequence[Repo],
    stored: Mapping[str, Mapping[str, str]],
    fingerprint: str,
    *,
    force: bool = False,
) -> Plan:
    plan = Plan()
    for repo in repos:
        meta = stored.get(repo.key)
        why = decide(repo, meta, fingerprint, force=force)
        if why is None:
            plan.unchanged.append(repo)
        else:
            plan.to_do.append(Job(repo=repo, why=why, stored=dict(meta or {})))
    return plan
