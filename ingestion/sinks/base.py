"""The sink interface shared by the bucket and the directory."""

from __future__ import annotations

import json
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.feed import check_name

DIGEST_CONTENT_TYPE = "text/markdown; charset=utf-8"
REPORT_CONTENT_TYPE = "application/json"
GZIP_CONTENT_TYPE = "application/gzip"
# The job's own objects live under names starting with "_", which no GitHub owner can start
# with: the listing of digests leaves that whole range out (ingestion.sinks.gcs).
RESERVED = "_"
RUNS_DIR = "_runs"
STATE_DIR = "_state"
FAILURES_PATH = f"{STATE_DIR}/failures.json"
LAST_FEED_PATH = f"{STATE_DIR}/last-feed.json"
SUMMARY_PATH = f"{STATE_DIR}/summary.json"
# Feed snapshots, named by the SHA-256 of their content: an unchanged feed is stored once.
FEED_SNAPSHOTS_DIR = f"{RUNS_DIR}/feeds"
# Attempts of a read-modify-write of a shared state object before giving up (tasks race).
UPDATE_ATTEMPTS = 20
# Cloud Run execution names, or a timestamp (colons allowed) when run elsewhere.
_EXECUTION_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


class SinkError(Exception):
    """The sink cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Stored:
    """A digest in the sink, as one listing shows it: its custom metadata and its size."""

    metadata: dict[str, str]
    size: int


class Sink(ABC):
    """Validates names and metadata once, here; subclasses only store bytes."""

    url: str  # "gs://bucket/prefix" or the directory

    @abstractmethod
    def check(self) -> None:
        """Raise SinkError unless the sink exists and can be written (a cheap probe)."""

    @abstractmethod
    def list_digests(self) -> dict[str, Stored]:
        """``{"owner/name": Stored}`` of every digest, from one listing."""

    def list_metadata(self) -> dict[str, dict[str, str]]:
        """``{"owner/name": custom metadata}`` of every digest, from one listing."""
        return {key: stored.metadata for key, stored in self.list_digests().items()}

    def put_digest(self, owner: str, name: str, source: Path, metadata: dict[str, str]) -> None:
        """Store the file ``source`` as ``{owner}/{name}.md`` with ``metadata``; never visible
        half-written. Streamed from the file: a digest is never held in memory whole."""
        check_metadata(metadata)
        self._put_digest(digest_path(owner, name), source, metadata)

    def put_metadata(self, owner: str, name: str, metadata: dict[str, str]) -> None:
        """Replace the metadata of an existing digest (its bytes stay)."""
        check_metadata(metadata)
        self._put_metadata(digest_path(owner, name), metadata)

    def put_report(self, execution: str, task_index: int, report: dict[str, Any]) -> None:
        """Store ``_runs/{execution}/task-{task_index}.json``."""
        body = json.dumps(report, indent=2, sort_keys=True).encode() + b"\n"
        self._put_report(report_path(execution, task_index), body)

    def read_json(self, relative: str) -> tuple[Any, str]:
        """The JSON value at ``relative`` (None when absent) and a version token for
        :meth:`write_json_if`; an unreadable value is a SinkError."""
        data, version = self._read(relative)
        if data is None:
            return None, version
        try:
            return json.loads(data), version
        except ValueError:
            raise SinkError(
                f"{self.url}/{relative} is not valid JSON — delete it (the job rebuilds it)"
            ) from None

    def write_json_if(self, relative: str, value: Any, version: str) -> bool:
        """Store ``value`` at ``relative`` only if the object is still at ``version`` (``""``:
        only if it does not exist yet). False when someone else changed it first."""
        body = json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
        return self._write_if(relative, body, version, REPORT_CONTENT_TYPE)

    def read_bytes(self, relative: str) -> bytes | None:
        """The object at ``relative``, None when absent."""
        return self._read(relative)[0]

    def create(self, relative: str, body: bytes, content_type: str) -> bool:
        """Store ``body`` at ``relative`` unless an object is there already (then False)."""
        return self._write_if(relative, body, "", content_type)

    def update_json(self, relative: str, change: Callable[[Any], Any]) -> Any:
        """Read-modify-write of a JSON object shared by the tasks: ``change`` gets the current
        value (None when absent) and returns the new one; repeated when another task wrote in
        between, so no task's change is lost."""
        for attempt in range(UPDATE_ATTEMPTS):
            current, version = self.read_json(relative)
            new = change(current)
            if new == current or (current is None and not new):
                return new  # nothing to write
            if self.write_json_if(relative, new, version):
                return new
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # let the other task finish
        raise SinkError(
            f"{self.url}/{relative} kept changing under {UPDATE_ATTEMPTS} attempts to update it "
            "— re-run the job"
        )

    def hurry(self, seconds: float) -> None:
        """From now on, give up retrying a failing request after ``seconds`` (when stopping:
        the run report must land before Cloud Run's SIGKILL). A directory does not retry."""
        return None

    @abstractmethod
    def _put_digest(self, relative: str, source: Path, metadata: dict[str, str]) -> None: ...

    @abstractmethod
    def _put_metadata(self, relative: str, metadata: dict[str, str]) -> None: ...

    @abstractmethod
    def _put_report(self, relative: str, body: bytes) -> None: ...

    @abstractmethod
    def _read(self, relative: str) -> tuple[bytes | None, str]: ...

    @abstractmethod
    def _write_if(self, relative: str, body: bytes, version: str, content_type: str) -> bool: ...


def digest_key(relative: str) -> str | None:
    """``"owner/name"`` for a digest's path relative to the sink root, None for anything else."""
    owner, sep, filename = relative.partition("/")
    if not sep or owner.startswith(RESERVED) or not filename.endswith(".md"):
        return None
    name = filename[: -len(".md")]
    if check_name(owner) or check_name(name):
        return None
    return f"{owner}/{name}"


def digest_path(owner: str, name: str) -> str:
    """``owner/name.md``; refuses names that could leave the sink (``..``, ``/``)."""
    for value in (owner, name):
        problem = check_name(value)
        if problem:
            raise ValueError(f"not a repository name: {problem}")
    if owner.startswith(RESERVED):
        raise ValueError(f"owner {owner!r} starts with {RESERVED!r}, kept for the job's objects")
    return f"{owner}/{name}.md"


def run_dir(execution: str) -> str:
    # "feeds" is the snapshots' folder beside the executions' (never a Cloud Run name, which
    # has the job's name and a suffix).
    if not _EXECUTION_RE.fullmatch(execution) or execution in (".", "..", "feeds"):
        raise ValueError(f"not a usable execution name: {execution!r}")
    return f"{RUNS_DIR}/{execution}"


def report_path(execution: str, task_index: int) -> str:
    if task_index < 0:
        raise ValueError(f"task index must not be negative, got {task_index}")
    return f"{run_dir(execution)}/task-{task_index}.json"


def feed_ref_path(execution: str) -> str:
    """Which feed snapshot ``execution`` shards (its first task decides; the others read it)."""
    return f"{run_dir(execution)}/feed-ref.json"


def feed_snapshot_path(sha256: str) -> str:
    """The gzip-compressed feed snapshot whose uncompressed content has this SHA-256."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a SHA-256: {sha256!r}")
    return f"{FEED_SNAPSHOTS_DIR}/{sha256}.json.gz"


def check_metadata(metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str, got {key!r}: {value!r}")
