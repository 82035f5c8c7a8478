"""The command line: flags, environment defaults, and one-line errors with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ingestion import digest
from ingestion.cli import UsageError, main, parse_options
from ingestion.settings import (
    DEFAULT_FEED_DEADLINE,
    DEFAULT_FEED_URL,
    DEFAULT_MAX_FAILURE_RATIO,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_TOTAL_SIZE,
    DEFAULT_REPO_TIMEOUT,
)

SINK = ["--sink", "/tmp/digests"]


def test_defaults() -> None:
    o = parse_options(SINK, {})
    assert o.feed == DEFAULT_FEED_URL
    assert o.sink == "/tmp/digests"
    assert (o.tasks, o.task_index) == (1, 0)
    assert o.limit is None
    assert o.concurrency >= 1
    assert not o.force and not o.dry_run and not o.allow_local
    assert o.repo_timeout == DEFAULT_REPO_TIMEOUT == 300
    assert o.max_file_size == DEFAULT_MAX_FILE_SIZE == 524288
    assert o.max_failure_ratio == DEFAULT_MAX_FAILURE_RATIO == 0.05
    assert o.max_total_size == DEFAULT_MAX_TOTAL_SIZE == digest.DigestSettings().max_total_size
    assert o.max_file_size == digest.DigestSettings().max_file_size
    assert o.allow_hosts == ("github.com",)


def test_environment_defaults() -> None:
    env = {
        "REPOS_FEED_URL": "https://example.org/repos.json",
        "GCS_BUCKET_NAME": "my-bucket",
        "CLOUD_RUN_TASK_COUNT": "4",
        "CLOUD_RUN_TASK_INDEX": "3",
        "FORCE_REINDEX": "Yes",
    }
    o = parse_options([], env)
    assert o.feed == "https://example.org/repos.json"
    assert o.sink == "gs://my-bucket"
    assert (o.tasks, o.task_index) == (4, 3)
    assert o.force


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_force_reindex_false_words(value: str) -> None:
    assert not parse_options(SINK, {"FORCE_REINDEX": value}).force


def test_flags_win_over_environment() -> None:
    env = {"GCS_BUCKET_NAME": "b", "CLOUD_RUN_TASK_COUNT": "4", "CLOUD_RUN_TASK_INDEX": "3"}
    o = parse_options(["--sink", "gs://other/prefix", "--tasks", "2", "--task-index", "1"], env)
    assert o.sink == "gs://other/prefix"
    assert (o.tasks, o.task_index) == (2, 1)


def test_legacy_batch_size_offset_are_tasks_and_index() -> None:
    o = parse_options([*SINK, "--batch-size", "5", "--offset", "2"], {})
    assert (o.tasks, o.task_index) == (5, 2)


def test_all_flags() -> None:
    o = parse_options(
        [
            *SINK,
            "--feed", "feed.json",
            "--limit", "10",
            "--concurrency", "3",
            "--force",
            "--dry-run",
            "--repo-timeout", "2.5",
            "--max-file-size", "1000",
            "--max-total-size", "5000",
            "--max-failure-ratio", "0.5",
            "--allow-host", "GitHub.com",
            "--allow-host", "127.0.0.1:9418",
            "--allow-host", "github.com",
            "--allow-local",
        ],
        {},
    )  # fmt: skip
    assert o.feed == "feed.json"
    assert o.limit == 10 and o.concurrency == 3
    assert o.force and o.dry_run and o.allow_local
    assert o.repo_timeout == 2.5 and o.max_file_size == 1000 and o.max_failure_ratio == 0.5
    assert o.max_total_size == 5000
    assert o.allow_hosts == ("github.com", "127.0.0.1:9418")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--limit", "ten"], "--limit: expected a positive integer, got 'ten'"),
        (["--limit", "0"], "--limit: expected a positive integer, got '0'"),
        (["--tasks", "-1"], "expected a positive integer"),
        (["--task-index", "x"], "--task-index/--offset: expected a non-negative integer, got 'x'"),
        (["--tasks", "2", "--task-index", "2"], "--task-index 2 is out of range: expected 0..1"),
        (["--repo-timeout", "0"], "--repo-timeout: expected a positive number of seconds"),
        (["--repo-timeout", "inf"], "--repo-timeout: expected a positive number of seconds"),
        (["--max-total-size", "1e6"], "--max-total-size: expected a positive integer"),
        (["--sink", "gs://"], "--sink: expected gs://BUCKET[/PREFIX]"),
        (["--sink", "gs://My_Bucket/x"], "got 'gs://My_Bucket/x'"),
        (["--sink", "s3://bucket"], "--sink: expected gs://BUCKET[/PREFIX] or a directory"),
        (["--sink", ""], "--sink: expected gs://BUCKET[/PREFIX] or a directory, got ''"),
        (["--max-failure-ratio", "1.5"], "expected a ratio between 0 and 1, got '1.5'"),
        (["--allow-host", "https://github.com"], "expected HOST or HOST:PORT"),
        (["--allow-host", "host:99999"], "expected HOST or HOST:PORT, got 'host:99999'"),
        (["--feed-deadline", "0"], "--feed-deadline: expected a positive number of seconds"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments(argv: list[str], needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_options([*SINK, *argv], {})
    assert needle in str(info.value)


def test_bad_task_environment_names_the_variable() -> None:
    with pytest.raises(UsageError, match="CLOUD_RUN_TASK_INDEX: expected a non-negative integer"):
        parse_options(SINK, {"CLOUD_RUN_TASK_INDEX": "seven"})


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GCS_BUCKET_NAME": "Not A Bucket"}, "GCS_BUCKET_NAME: expected gs://BUCKET"),
        ({"CLOUD_RUN_TASK_INDEX": "4"}, "CLOUD_RUN_TASK_INDEX 4 is out of range: expected 0..0"),
        ({"CLOUD_RUN_TASK_COUNT": "0"}, "CLOUD_RUN_TASK_COUNT: expected a positive integer"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_options([] if "GCS_BUCKET_NAME" in env else SINK, env)
    assert needle in str(info.value)


def test_missing_sink_names_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], {}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--sink" in err and "GCS_BUCKET_NAME" in err


def test_bad_argument_is_one_line_exit_2_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingestion", "--sink", "x", "--limit", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "python -m ingestion: error: argument --limit: expected a positive integer, got '-3'"
    ]


def test_help_lists_every_option() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingestion", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for flag in (
        "--feed", "--sink", "--limit", "--tasks", "--batch-size", "--task-index", "--offset",
        "--concurrency", "--force", "--dry-run", "--repo-timeout", "--max-file-size",
        "--max-total-size", "--max-failure-ratio", "--allow-host", "--allow-local",
        "--feed-deadline",
    ):  # fmt: skip
        assert flag in proc.stdout


@pytest.mark.parametrize(
    ("argv", "env", "where"),
    [
        (["--feed", "https://user:TOKEN-3f9a@example.org/repos.json"], {}, "--feed"),
        (["--feed", "https://TOKEN-3f9a@example.org/repos.json"], {}, "--feed"),
        ([], {"REPOS_FEED_URL": "https://x:TOKEN-3f9a@example.org/r.json"}, "REPOS_FEED_URL"),
    ],
)
def test_a_feed_url_with_credentials_is_refused_without_showing_them(
    argv: list[str], env: dict[str, str], where: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingestion", *SINK, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert where in line and "credentials" in line and "https://***@example.org/" in line
    assert "TOKEN-3f9a" not in line


def test_the_storage_endpoint_is_an_option_from_the_environment() -> None:
    assert parse_options(SINK, {}).storage_endpoint is None
    o = parse_options(SINK, {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443/"})
    assert o.storage_endpoint == "http://127.0.0.1:4443"
    with pytest.raises(UsageError, match="STORAGE_EMULATOR_HOST: expected http://HOST:PORT"):
        parse_options(SINK, {"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"})


def test_log_level_and_feed_deadline() -> None:
    o = parse_options([*SINK, "--feed-deadline", "12.5"], {"LOG_LEVEL": "debug"})
    assert o.feed_deadline == 12.5 and o.log_level == "DEBUG"
    assert parse_options(SINK, {}).feed_deadline == DEFAULT_FEED_DEADLINE
