"""Sharding: each repository in exactly one task, deterministic, balanced by weight."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.feed import Repo
from ingestion.shard import shard, weight


def make_repos(sizes: list[int]) -> list[Repo]:
    return [
        Repo(f"org{i % 7}", f"repo-{i}", f"https://github.com/org{i % 7}/repo-{i}", "", size)
        for i, size in enumerate(sizes)
    ]


# Mostly small repositories with a few huge ones, as in the real feed.
sizes_strategy = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=2_000),
        st.integers(min_value=0, max_value=5_000_000),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(sizes=sizes_strategy, tasks=st.integers(min_value=1, max_value=12))
def test_every_repo_lands_in_exactly_one_balanced_shard(sizes: list[int], tasks: int) -> None:
    repos = make_repos(sizes)
    shards = [shard(repos, tasks, i) for i in range(tasks)]

    keys = [r.key for s in shards for r in s]
    assert sorted(keys) == sorted(r.key for r in repos)
    assert len(keys) == len(set(keys))

    if repos:
        loads = [sum(weight(r) for r in s) for s in shards]
        ideal = sum(weight(r) for r in repos) / tasks
        assert max(loads) <= ideal + max(weight(r) for r in repos)

    # Within a shard the feed's order is kept.
    position = {r.key: i for i, r in enumerate(repos)}
    for s in shards:
        assert [position[r.key] for r in s] == sorted(position[r.key] for r in s)


@settings(max_examples=50, deadline=None)
@given(sizes=sizes_strategy, tasks=st.integers(min_value=1, max_value=8), seed=st.integers())
def test_deterministic_and_independent_of_input_order(
    sizes: list[int], tasks: int, seed: int
) -> None:
    repos = make_repos(sizes)
    shuffled = list(repos)
    random.Random(seed).shuffle(shuffled)
    for i in range(tasks):
        first = shard(repos, tasks, i)
        assert shard(list(repos), tasks, i) == first
        # The same feed in another order gives the same membership (order follows the input).
        assert {r.key for r in shard(shuffled, tasks, i)} == {r.key for r in first}


def test_huge_repositories_are_spread() -> None:
    repos = make_repos([10_000_000] * 4 + [10] * 400)
    shards = [shard(repos, 4, i) for i in range(4)]
    assert [sum(1 for r in s if r.size_kb == 10_000_000) for s in shards] == [1, 1, 1, 1]
    # Without sizes (the published feed has none) the split is by count.
    plain = make_repos([0] * 10)
    assert sorted(len(shard(plain, 3, i)) for i in range(3)) == [3, 3, 4]


def test_more_tasks_than_repositories() -> None:
    repos = make_repos([1, 2])
    shards = [shard(repos, 5, i) for i in range(5)]
    assert sorted(len(s) for s in shards) == [0, 0, 0, 1, 1]


@pytest.mark.parametrize(("tasks", "index"), [(0, 0), (-1, 0), (2, 2), (2, -1), (1, 1)])
def test_bad_arguments(tasks: int, index: int) -> None:
    with pytest.raises(ValueError):
        shard(make_repos([1]), tasks, index)
