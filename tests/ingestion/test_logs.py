"""Structured logs: stdlib logging in Cloud Logging's format, the job's and its libraries'."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ingestion.logs import Progress, configured, eta_seconds, get_logger, level_from

REPO_ROOT = Path(__file__).resolve().parents[2]


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_cloud_logging_fields() -> None:
    out = io.StringIO()
    with configured(out, human=False, fields={"task_index": 3}):
        get_logger("ingestion.pipeline").error(
            "failed %s: timeout",
            "org/repo",
            extra={"repo": "org/repo", "reason": "timeout", "duration_s": 1.5},
        )
    [record] = lines(out)
    assert record["severity"] == "ERROR"
    assert record["message"] == "failed org/repo: timeout"
    assert record["repo"] == "org/repo" and record["reason"] == "timeout"
    assert record["duration_s"] == 1.5 and record["task_index"] == 3
    assert record["time"].endswith("Z")
    datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
    # The job's own lines carry no logger name or source location: only its fields.
    assert set(record) == {
        "severity", "message", "time", "task_index", "repo", "reason", "duration_s",
    }  # fmt: skip


def test_every_severity_and_threshold() -> None:
    out = io.StringIO()
    log = get_logger()
    with configured(out, level="DEBUG", human=False):
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
    assert [r["severity"] for r in lines(out)] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    quiet = io.StringIO()
    with configured(quiet, human=False):
        log.debug("hidden")
    assert quiet.getvalue() == ""


def test_log_level_comes_from_the_environment() -> None:
    assert level_from({"LOG_LEVEL": "debug"}) == "DEBUG"
    assert level_from({"LOG_LEVEL": "loud"}) == "INFO"
    assert level_from({}) == "INFO"


def test_libraries_warnings_are_captured_in_the_same_format() -> None:
    out = io.StringIO()
    with configured(out, human=False, fields={"task_index": 1}):
        library = logging.getLogger("google.cloud.storage.blob")
        library.info("chatter")  # below WARNING: a library's INFO is not worth a line
        library.warning("retrying upload %d", 2)
    [record] = lines(out)
    assert record["severity"] == "WARNING" and record["message"] == "retrying upload 2"
    assert record["logger"] == "google.cloud.storage.blob" and record["task_index"] == 1
    location = record["logging.googleapis.com/sourceLocation"]
    assert location["file"].endswith("test_logs.py") and int(location["line"]) > 0
    assert location["function"] == "test_libraries_warnings_are_captured_in_the_same_format"


def test_odd_values_are_serialised_not_fatal() -> None:
    out = io.StringIO()
    with configured(out, human=False):
        get_logger().info(
            "odd",
            extra={
                "path": Path("/x"),
                "items": {1, 2},
                "nested": {"a": (1, 2)},
                "skipped": None,
                "text": "é\u2603",
                "error": ValueError("bad"),
            },
        )
    [record] = lines(out)
    assert record["path"] == "/x"
    assert sorted(record["items"]) == [1, 2]
    assert record["nested"] == {"a": [1, 2]}
    assert "skipped" not in record
    assert record["text"] == "é\u2603"
    assert "bad" in str(record["error"])


def test_an_exception_is_one_record_with_its_traceback() -> None:
    out = io.StringIO()
    with configured(out, human=False):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            get_logger().exception("it broke")
    [record] = lines(out)
    assert record["severity"] == "ERROR" and "RuntimeError: boom" in record["traceback"]


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
    log = get_logger()

    def spam(n: int) -> None:
        for i in range(200):
            log.info("x" * 50, extra={"writer": n, "i": i})

    with configured(out, human=False):
        threads = [threading.Thread(target=spam, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(lines(out)) == 1600


def test_a_broken_stream_never_stops_the_job(capfd: Any) -> None:
    out = io.StringIO()
    out.close()
    with configured(out, human=False):
        get_logger().error("nowhere to go")
    assert capfd.readouterr().err == ""


def test_human_lines_for_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with configured(out):
        get_logger().warning("rejected feed entry a/b", extra={"reason": "bad_url"})
    text = out.getvalue()
    assert "WARNING" in text and "rejected feed entry a/b" in text and "reason=bad_url" in text
    assert not text.startswith("{")


class Collect(logging.Handler):
    """Keeps the records and says when there are enough."""

    def __init__(self, wanted: int) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.enough = threading.Event()
        self.wanted = wanted

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if len(self.records) >= self.wanted:
            self.enough.set()


def test_progress_line_has_counts_rate_and_eta() -> None:
    out = io.StringIO()
    seen = Collect(wanted=2)
    with configured(out, human=False):
        get_logger().addHandler(seen)
        progress = Progress(lambda: (5, 20, {"failed": 1}), interval=0.05).start()
        try:
            assert seen.enough.wait(10), "no progress line within 10 s"
        finally:
            progress.stop()
            get_logger().removeHandler(seen)
    record = lines(out)[0]
    assert record["message"] == "progress 5/20"
    assert record["done"] == 5 and record["total"] == 20 and record["failed"] == 1
    assert record["rate_per_s"] > 0 and record["eta_s"] >= 0


def test_eta() -> None:
    assert eta_seconds(0, 10, 5.0) is None
    assert eta_seconds(5, 10, 10.0) == 10.0
    assert eta_seconds(10, 10, 10.0) == 0.0


def test_the_jobs_process_never_imports_gitingest() -> None:
    """gitingest replaces every logging handler with loguru's on import; the job owns the code it
    needs (ingestion/gitingest_text.py), so neither it nor its digest code imports gitingest."""
    code = (
        "import ingestion.cli, ingestion.runner, ingestion.digest, sys;"
        " print('gitingest' in sys.modules or 'loguru' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert proc.stdout.strip() == "False", proc.stderr


def test_json_logs_survive_a_digest_in_the_same_process() -> None:
    """init_worker (the digest code's set-up) leaves the job's logging as it found it."""
    code = """
import logging, sys
from ingestion.logs import configure, get_logger
from ingestion.digest import init_worker
configure(sys.stdout, human=False)
log = get_logger()
log.info("before", extra={"n": 1})
init_worker()
log.error("after init_worker", extra={"n": 2})
logging.getLogger("anything").warning("a library after init_worker")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["message"] for r in records] == [
        "before", "after init_worker", "a library after init_worker",
    ]  # fmt: skip
    assert [r["severity"] for r in records] == ["INFO", "ERROR", "WARNING"]
