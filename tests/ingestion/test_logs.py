"""Structured logs: Cloud Logging's fields, also after gitingest took over the root logger."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any

from ingestion.logs import Logger, Progress, eta_seconds


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_cloud_logging_fields() -> None:
    out = io.StringIO()
    log = Logger(out, base={"task_index": 3})
    log.error("failed org/repo: timeout", repo="org/repo", reason="timeout", duration_s=1.5)
    [record] = lines(out)
    assert record["severity"] == "ERROR"
    assert record["message"] == "failed org/repo: timeout"
    assert record["repo"] == "org/repo" and record["reason"] == "timeout"
    assert record["duration_s"] == 1.5 and record["task_index"] == 3
    assert record["time"].endswith("Z")
    datetime.fromisoformat(record["time"].replace("Z", "+00:00"))


def test_every_severity_and_threshold() -> None:
    out = io.StringIO()
    log = Logger(out, min_severity="DEBUG")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert [r["severity"] for r in lines(out)] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    quiet = io.StringIO()
    Logger(quiet).debug("hidden")
    assert quiet.getvalue() == ""


def test_odd_values_are_serialised_not_fatal() -> None:
    out = io.StringIO()
    log = Logger(out)
    log.info("odd", path=io, items={1, 2}, nested={"a": (1, 2)}, skipped=None, text="é\u2603")
    [record] = lines(out)
    assert isinstance(record["path"], str)
    assert sorted(record["items"]) == [1, 2]
    assert record["nested"] == {"a": [1, 2]}
    assert "skipped" not in record
    assert record["text"] == "é\u2603"


class SlowStream(io.StringIO):
    """A stream whose write hands over to other threads half-way through, as a pipe's may."""

    def write(self, text: str) -> int:
        half = len(text) // 2
        super().write(text[:half])
        time.sleep(0)  # release the GIL mid-line
        super().write(text[half:])
        return len(text)


def test_concurrent_writers_never_interleave() -> None:
    out = SlowStream()
    log = Logger(out)

    def spam(n: int) -> None:
        for i in range(200):
            log.info("x" * 50, writer=n, i=i)

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(lines(out)) == 1600


def test_human_lines_for_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    Logger(out).warning("rejected feed entry a/b", reason="bad_url")
    text = out.getvalue()
    assert "WARNING" in text and "rejected feed entry a/b" in text and "reason=bad_url" in text
    assert not text.startswith("{")


def test_progress_line_has_counts_rate_and_eta() -> None:
    out = io.StringIO()
    progress = Progress(Logger(out), lambda: (5, 20, {"failed": 1}), interval=0.05).start()
    try:
        deadline = threading.Event()
        while len(out.getvalue().splitlines()) < 2 and not deadline.wait(0.01):
            pass
    finally:
        progress.stop()
    record = lines(out)[0]
    assert record["message"] == "progress 5/20"
    assert record["done"] == 5 and record["total"] == 20 and record["failed"] == 1
    assert record["rate_per_s"] > 0 and record["eta_s"] >= 0


def test_eta() -> None:
    assert eta_seconds(0, 10, 5.0) is None
    assert eta_seconds(5, 10, 10.0) == 10.0
    assert eta_seconds(10, 10, 10.0) == 0.0


def test_json_logs_survive_gitingest_import() -> None:
    """gitingest replaces the root handlers with loguru's at import; our lines must not care."""
    code = """
import logging, sys
from ingestion.logs import Logger
from ingestion.digest import init_worker
log = Logger(sys.stdout)
log.info("before", n=1)
import gitingest
logging.getLogger("anything").warning("stdlib logging after gitingest")
log.info("after plain import", n=2)
init_worker()
log.error("after init_worker", n=3)
"""
    env = {"PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    ours = [r for r in records if "severity" in r]
    assert [r["message"] for r in ours] == ["before", "after plain import", "after init_worker"]
    assert [r["severity"] for r in ours] == ["INFO", "INFO", "ERROR"]
