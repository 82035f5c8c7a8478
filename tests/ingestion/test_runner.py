"""The pieces the runner composes: the skip decision and the run report's arithmetic."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ingestion.cpus import available_cpus
from ingestion.feed import Repo
from ingestion.plan import decide, make_plan
from ingestion.report import Failure, RunReport, execution_id

FP = "v1-abc"


def repo(name: str, pushed: str = "2024-01-01T00:00:00Z") -> Repo:
    return Repo(owner="org", name=name, url=f"https://github.com/org/{name}", pushed_at=pushed)


def meta(pushed: str = "2024-01-01T00:00:00Z", version: str = FP) -> dict[str, str]:
    return {"pushedAt": pushed, "ingest_version": version, "sha256": "0" * 64}


@pytest.mark.parametrize(
    ("stored", "pushed", "force", "why"),
    [
        (None, "2024-01-01T00:00:00Z", False, "new"),
        ({}, "2024-01-01T00:00:00Z", False, "new"),
        (meta(), "2024-01-01T00:00:00Z", False, None),
        (meta(), "2024-01-02T00:00:00Z", False, "pushed"),
        (meta(version="v1-other"), "2024-01-01T00:00:00Z", False, "settings"),
        ({"pushedAt": "2024-01-01T00:00:00Z"}, "2024-01-01T00:00:00Z", False, "settings"),
        (meta(pushed=""), "", False, "unknown_pushed_at"),
        (meta(), "2024-01-01T00:00:00Z", True, "forced"),
    ],
)
def test_decide(stored: dict[str, str] | None, pushed: str, force: bool, why: str | None) -> None:
    assert decide(repo("a", pushed), stored, FP, force=force) == why


def test_plan_keeps_feed_order_and_what_is_stored() -> None:
    repos = [repo("c"), repo("a", "2024-05-05T00:00:00Z"), repo("b")]
    plan = make_plan(repos, {"org/a": meta(), "org/b": meta()}, FP)
    assert [j.repo.name for j in plan.to_do] == ["c", "a"]
    assert [j.why for j in plan.to_do] == ["new", "pushed"]
    assert plan.to_do[1].stored["sha256"] == "0" * 64
    assert [r.name for r in plan.unchanged] == ["b"]
    assert plan.why_counts() == {"new": 1, "pushed": 1}


def report() -> RunReport:
    return RunReport(execution="e", task_index=0, task_count=1)


def test_exit_code_follows_the_failure_ratio() -> None:
    r = report()
    assert r.exit_code(0.05) == 0  # nothing attempted
    for _ in range(19):
        r.record_written(rewritten=True, size=10, files=1)
    r.record_failure(Failure("org/x", "timeout"))
    assert r.attempted == 20 and r.failure_ratio() == 0.05
    assert r.exit_code(0.05) == 0
    r.record_failure(Failure("org/y", "not_found"))
    assert r.exit_code(0.05) == 1
    assert r.exit_code(0.5) == 0


def test_interrupted_and_fatal_runs_exit_1() -> None:
    r = report()
    r.record_interrupted()
    assert r.attempted == 0 and r.done == 1
    assert r.exit_code(1.0) == 0
    r.stopped_by = "SIGTERM"
    assert r.exit_code(1.0) == 1
    r = report()
    r.fatal = "feed unreadable"
    assert r.exit_code(1.0) == 1


def test_report_body() -> None:
    r = report()
    r.record_written(rewritten=True, size=100, files=3)
    r.record_written(rewritten=False, size=40, files=2)
    r.record_failure(Failure("org/x", "timeout", "took too long", "clone"))
    r.rejected.update({"bad_url": 2})
    r.add_stage("clone", 1.5)
    r.add_stage("clone", 0.5)
    body = r.to_dict()
    assert body["counts"]["processed"] == 2
    assert body["counts"]["rewritten"] == 1 and body["counts"]["metadata_refreshed"] == 1
    assert body["counts"]["failed"] == 1 and body["counts"]["rejected"] == 2
    [failure] = body["failures"]
    assert failure.pop("first_failed")
    assert failure == {
        "repo": "org/x",
        "reason": "timeout",
        "stage": "clone",
        "detail": "took too long",
        "persistent": False,
    }
    assert body["bytes"] == {"written": 100, "digests": 140}
    assert body["stage_seconds_summed"] == {"clone": 2.0}
    assert body["failure_ratio"] == round(1 / 3, 4)


def test_execution_id() -> None:
    assert execution_id({"CLOUD_RUN_EXECUTION": "job-abc12"}) == "job-abc12"
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", execution_id({}))


def test_runs_started_in_the_same_second_get_their_own_execution() -> None:
    ids = {execution_id({}) for _ in range(50)}  # well within one second, or a few
    assert len(ids) == 50


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, 8),  # no cgroup limit: the affinity mask
        ({"cpu.max": "max 100000\n"}, 8),
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs of quota: 2 workers
        ({"cpu.max": "10000 100000\n"}, 1),  # a tenth of a CPU still gets one
        ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, 8),
    ],
)
def test_available_cpus_follows_affinity_and_cgroup_quota(
    files: dict[str, str], expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert available_cpus(tmp_path) == expected
