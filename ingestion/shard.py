"""Split the feed between Cloud Run tasks: every repository to exactly one task, balanced.

Greedy longest-processing-time: repositories sorted by weight (heaviest first, ties broken by
key) are each given to the currently lightest task. That keeps every task within one
repository's weight of the ideal share, so a few huge repositories never pile up in one task.
Every task computes the same assignment from the same feed, so no coordination is needed.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from ingestion.feed import Repo

# A repository costs something (a clone round trip, a process hand-off) however small it is;
# weighing that as this many KB keeps thousands of tiny repositories from all landing together.
PER_REPO_KB = 64


def weight(repo: Repo) -> int:
    return max(repo.size_kb, 0) + PER_REPO_KB


def assign(repos: Sequence[Repo], tasks: int) -> list[int]:
    """The task index of each repository in ``repos`` (same order)."""
    if tasks < 1:
        raise ValueError(f"tasks must be at least 1, got {tasks}")
    order = sorted(range(len(repos)), key=lambda i: (-weight(repos[i]), repos[i].key.lower(), i))
    loads = [(0, task) for task in range(tasks)]  # (total weight, task index): a min-heap
    owner = [0] * len(repos)
    for i in order:
        load, task = heapq.heappop(loads)
        owner[i] = task
        heapq.heappush(loads, (load + weight(repos[i]), task))
    return owner


def shard(repos: Sequence[Repo], tasks: int, index: int) -> list[Repo]:
    """The repositories task ``index`` of ``tasks`` processes, in feed order."""
    if tasks < 1:
        raise ValueError(f"tasks must be at least 1, got {tasks}")
    if not 0 <= index < tasks:
        raise ValueError(f"task index must be in 0..{tasks - 1}, got {index}")
    owners = assign(repos, tasks)
    return [repo for repo, task in zip(repos, owners, strict=True) if task == index]
