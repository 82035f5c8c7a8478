"""A run stopped by SIGTERM, then run again, leaves exactly what one clean run leaves.

Cloud Run sends SIGTERM on cancel and on timeout: the daily job's normal life. ``timeout -s
TERM`` and Ctrl-C signal the whole process group (digest workers and their fork server
included), Cloud Run the container's main process only; both are tried, at several points of
the run, each found by waiting for the log line that says the run got there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.git import GitServer, make_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
REPOS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    root = tmp_path_factory.mktemp("interrupt")
    with GitServer(root / "git") as srv:
        for i in range(REPOS):
            # Enough files that a digest takes a while: the signal finds some in flight.
            files = {f"d{j % 7}/f{j}.py": f"print({i}, {j})\n" * 40 for j in range(400)}
            make_repo(srv.root / f"org/r{i}", files)
        yield srv


@pytest.fixture(scope="module")
def feed(server: GitServer) -> Path:
    entries = [
        {"owner": "org", "name": f"r{i}", "url": server.url(f"org/r{i}"), "pushedAt": "2024-01-01"}
        for i in range(REPOS)
    ]
    path = server.root.parent / "feed.json"
    path.write_text(json.dumps(entries))
    return path


def start(feed: Path, sink: Path, server: GitServer) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "ingestion", "--feed", str(feed), "--sink", str(sink),
            "--allow-host", server.host, "--concurrency", "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "LOG_LEVEL": "DEBUG"},
        start_new_session=True,  # a process group of its own, as under `timeout`
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]]]:
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    return proc.returncode, [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def clean(feed: Path, server: GitServer) -> Path:
    sink = server.root.parent / "clean"
    code, _ = finish(start(feed, sink, server))
    assert code == 0
    return sink


def kept(sink: Path) -> dict[str, Any]:
    """What a run leaves that must not depend on how it got there: every digest's bytes, its
    metadata but the time it was written, and the remembered failures. (The run reports, the
    feed snapshots and the summary record each run; last-feed.json names the execution.)"""
    found: dict[str, Any] = {}
    for path in sorted(sink.rglob("*")):
        rel = path.relative_to(sink).as_posix()
        if not path.is_file() or rel.startswith("_runs/") or path.name.startswith("."):
            continue
        if rel in ("_state/summary.json", "_state/last-feed.json"):
            continue
        if rel.endswith(".meta.json"):
            meta = json.loads(path.read_text())
            meta.pop("processedAt")
            found[rel] = meta
        else:
            found[rel] = path.read_bytes()
    return found


def ingested(record: dict[str, Any]) -> bool:
    return record["message"].startswith("ingested")


def cloned(record: dict[str, Any]) -> bool:
    return record["message"].startswith("cloned")  # its digest is about to run


def planned(record: dict[str, Any]) -> bool:
    return record["message"].startswith("plan:")


@pytest.mark.parametrize(
    ("when", "group"),
    [
        (planned, True),
        (cloned, True),
        (ingested, True),
        (cloned, False),  # Cloud Run: SIGTERM to the job's own process only
    ],
    ids=["group-after-plan", "group-digest-in-flight", "group-after-one-ingested", "pid-only"],
)
def test_sigterm_then_rerun_equals_a_clean_run(
    when: Callable[[dict[str, Any]], bool],
    group: bool,
    feed: Path,
    server: GitServer,
    clean: Path,
    tmp_path: Path,
) -> None:
    sink = tmp_path / "sink"
    proc = start(feed, sink, server)
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not (seen and when(seen[-1])):
        assert time.monotonic() < deadline, seen
        line = proc.stdout.readline()
        assert line, f"the job ended before the point to stop it: {seen}"
        seen.append(json.loads(line))
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    code, rest = finish(proc)
    records = seen + rest

    assert code == 1
    [report] = [json.loads(p.read_text()) for p in sink.glob("_runs/*/task-0.json")]
    assert report["stopped_by"] == "SIGTERM"
    assert report["counts"]["failed"] == 0, report["failures"]
    assert not [r for r in records if r["severity"] == "ERROR" and "repo" in r]
    assert not (sink / "_state" / "failures.json").exists()  # nothing remembered as failing

    code, records = finish(start(feed, sink, server))
    assert code == 0
    finished = records[-1]["counts"]
    assert finished["backing_off"] == 0 and finished["failed"] == 0
    assert finished["processed"] + finished["unchanged"] == REPOS
    assert kept(sink) == kept(clean)
