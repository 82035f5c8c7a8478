"""``python -m ingestion``: the command line of the job (the image's ENTRYPOINT).

Flags win over the environment; the environment (what Cloud Run sets) wins over built-in
defaults. Bad input exits 2 with one line naming the bad value and the expected form.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from ingestion.feed import credentials_in
from ingestion.logs import configure, level_from
from ingestion.settings import (
    DEFAULT_FEED_DEADLINE,
    DEFAULT_FEED_URL,
    DEFAULT_MAX_FAILURE_RATIO,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_TOTAL_SIZE,
    DEFAULT_REPO_TIMEOUT,
    STORAGE_EMULATOR_ENV,
    TRUE_WORDS,
    Options,
)

__all__ = ["Options", "UsageError", "build_parser", "main", "parse_options"]


class UsageError(Exception):
    """Bad arguments or environment: exit 2 with this one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block first; one line is easier to read in a log.
        raise UsageError(message)


def _number(
    kind: Callable[[str], Any], form: str, ok: Callable[[Any], bool]
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}")
        return value

    return parse


positive_int = _number(int, "a positive integer", lambda v: v > 0)
non_negative_int = _number(int, "a non-negative integer", lambda v: v >= 0)
positive_float = _number(
    float, "a positive number of seconds", lambda v: v > 0 and math.isfinite(v)
)
ratio = _number(float, "a ratio between 0 and 1", lambda v: 0 <= v <= 1)

# Cloud Storage bucket names: 3-63 characters of a-z 0-9 - _ . (up to 222 with dots),
# starting and ending with a letter or digit.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


def sink_spec(text: str) -> str:
    """``gs://BUCKET[/PREFIX]`` with a valid bucket name, or a non-empty directory path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected gs://BUCKET[/PREFIX] or a directory, got ''")
    if text.startswith("gs://"):
        bucket = text[len("gs://") :].partition("/")[0]
        if not _BUCKET_RE.fullmatch(bucket):
            raise argparse.ArgumentTypeError(
                f"expected gs://BUCKET[/PREFIX] with a bucket name of 3-63 characters "
                f"a-z 0-9 - _ ., got {text!r}"
            )
    elif "://" in text:
        raise argparse.ArgumentTypeError(
            f"expected gs://BUCKET[/PREFIX] or a directory, got {text!r}"
        )
    return text


def host(text: str) -> str:
    """``HOST`` or ``HOST:PORT``, as git URLs spell it (no scheme, user or path)."""
    name, sep, port = text.strip().lower().partition(":")
    valid_name = bool(name) and all(c.isalnum() or c in "-._" for c in name)
    valid_port = not sep or (port.isdigit() and 0 < int(port) < 65536)
    if not (valid_name and valid_port):
        raise argparse.ArgumentTypeError(f"expected HOST or HOST:PORT, got {text!r}")
    return f"{name}:{port}" if sep else name


def default_concurrency() -> int:
    from ingestion.cpus import available_cpus

    # Clones wait on the network while digests use the CPUs: keep a few more in flight.
    return 2 * available_cpus() + 2


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m ingestion",
        description="Turn the repository feed into text digests in a bucket or a directory.",
    )
    p.add_argument("--feed", metavar="URL|PATH", help="default $REPOS_FEED_URL, else xgov's feed")
    p.add_argument(
        "--sink",
        type=sink_spec,
        metavar="gs://BUCKET[/PREFIX]|DIR",
        help="default gs://$GCS_BUCKET_NAME",
    )
    p.add_argument(
        "--limit", type=positive_int, metavar="N", help="only the first N valid feed entries"
    )
    p.add_argument(
        "--tasks",
        "--batch-size",
        dest="tasks",
        type=positive_int,
        metavar="N",
        help="number of tasks; default $CLOUD_RUN_TASK_COUNT, else 1",
    )
    p.add_argument(
        "--task-index",
        "--offset",
        dest="task_index",
        type=non_negative_int,
        metavar="I",
        help="this task's index; default $CLOUD_RUN_TASK_INDEX, else 0",
    )
    p.add_argument("--concurrency", type=positive_int, metavar="K", help="repositories in flight")
    p.add_argument("--force", action="store_true", help="redo everything ($FORCE_REINDEX)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; no clone, no write")
    p.add_argument(
        "--allow-shrink",
        action="store_true",
        help="accept an empty feed, or one under half the last run's ($ALLOW_FEED_SHRINK)",
    )
    p.add_argument(
        "--repo-timeout",
        type=positive_float,
        default=DEFAULT_REPO_TIMEOUT,
        metavar="S",
        help="per-repository limit in seconds (default %(default)s)",
    )
    p.add_argument(
        "--feed-deadline",
        type=positive_float,
        default=DEFAULT_FEED_DEADLINE,
        metavar="S",
        help="the whole feed download, retries included, in seconds (default %(default)s)",
    )
    p.add_argument(
        "--max-file-size",
        type=positive_int,
        default=DEFAULT_MAX_FILE_SIZE,
        metavar="B",
        help="larger files are left out of digests (default %(default)s)",
    )
    p.add_argument(
        "--max-total-size",
        type=positive_int,
        default=DEFAULT_MAX_TOTAL_SIZE,
        metavar="B",
        help="bytes per digest, all included; files beyond it are left out (default %(default)s)",
    )
    p.add_argument(
        "--max-failure-ratio",
        type=ratio,
        default=DEFAULT_MAX_FAILURE_RATIO,
        metavar="R",
        help="exit 1 when more than R of attempted repositories failed (default %(default)s)",
    )
    p.add_argument(
        "--allow-host",
        dest="allow_hosts",
        action="append",
        type=host,
        metavar="HOST[:PORT]",
        help="host repositories may be cloned from; repeatable (default github.com)",
    )
    p.add_argument(
        "--allow-local", action="store_true", help="also accept local paths and file:// URLs"
    )
    return p


def _env_int(environ: Mapping[str, str], name: str, parse: Callable[[str], int]) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"environment variable {name}: {exc}") from None


def _sink(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    if args.sink is not None:
        return str(args.sink)
    bucket = environ.get("GCS_BUCKET_NAME", "").strip()
    if not bucket:
        raise UsageError(
            "no sink: pass --sink gs://BUCKET[/PREFIX] or --sink DIR, or set GCS_BUCKET_NAME"
        )
    sink = bucket if bucket.startswith("gs://") else f"gs://{bucket}"
    try:
        return sink_spec(sink)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"environment variable GCS_BUCKET_NAME: {exc}") from None


def _tasks(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[int, int]:
    tasks = args.tasks or _env_int(environ, "CLOUD_RUN_TASK_COUNT", positive_int) or 1
    index = args.task_index
    index_from = "--task-index"
    if index is None:
        index = _env_int(environ, "CLOUD_RUN_TASK_INDEX", non_negative_int) or 0
        index_from = "CLOUD_RUN_TASK_INDEX"
    if index >= tasks:
        raise UsageError(
            f"{index_from} {index} is out of range: expected 0..{tasks - 1} ({tasks} tasks)"
        )
    return tasks, index


def _feed(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The feed, refused when its URL carries credentials: they would show in every log line
    and run report that names the feed (the message shows the URL with them hidden)."""
    given = args.feed
    feed = given or environ.get("REPOS_FEED_URL", "").strip() or DEFAULT_FEED_URL
    redacted = credentials_in(feed)
    if redacted is not None:
        where = "--feed" if given else "environment variable REPOS_FEED_URL"
        raise UsageError(
            f"{where}: a URL with credentials is refused ({redacted}): expected a public "
            "https:// URL without user:password@"
        )
    return feed


def _storage_endpoint(environ: Mapping[str, str]) -> str | None:
    """``STORAGE_EMULATOR_HOST`` (``http://HOST:PORT``): a gs:// sink then talks to that
    emulator with anonymous credentials instead of Cloud Storage."""
    text = environ.get(STORAGE_EMULATOR_ENV, "").strip()
    if not text:
        return None
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise UsageError(
            f"environment variable {STORAGE_EMULATOR_ENV}: expected http://HOST:PORT, got {text!r}"
        )
    return text.rstrip("/")


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in TRUE_WORDS


def parse_options(argv: Sequence[str], environ: Mapping[str, str]) -> Options:
    """Flags + environment → Options, or UsageError."""
    args = build_parser().parse_args(list(argv))
    tasks, index = _tasks(args, environ)
    return Options(
        feed=_feed(args, environ),
        sink=_sink(args, environ),
        limit=args.limit,
        tasks=tasks,
        task_index=index,
        concurrency=args.concurrency or default_concurrency(),
        force=args.force or _flag(environ, "FORCE_REINDEX"),
        dry_run=args.dry_run,
        allow_shrink=args.allow_shrink or _flag(environ, "ALLOW_FEED_SHRINK"),
        repo_timeout=args.repo_timeout,
        max_file_size=args.max_file_size,
        max_total_size=args.max_total_size,
        max_failure_ratio=args.max_failure_ratio,
        allow_hosts=tuple(dict.fromkeys(args.allow_hosts or ["github.com"])),
        allow_local=args.allow_local,
        feed_deadline=args.feed_deadline,
        storage_endpoint=_storage_endpoint(environ),
        log_level=level_from(environ),
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv, environ)
    except UsageError as exc:
        print(f"python -m ingestion: error: {exc}", file=sys.stderr)
        return 2

    from ingestion.runner import run

    configure(level=options.log_level, fields={"task_index": options.task_index})
    return run(options, environ=environ)
