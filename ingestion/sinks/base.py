"""The sink interface shared by the bucket and the directory."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ingestion.feed import check_name

DIGEST_CONTENT_TYPE = "text/markdown; charset=utf-8"
REPORT_CONTENT_TYPE = "application/json"
RUNS_DIR = "_runs"
# Cloud Run execution names, or a timestamp (colons allowed) when run elsewhere.
_EXECUTION_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


class SinkError(Exception):
    """The sink cannot be used; the message says what is wrong and what to do."""


class Sink(ABC):
    """Validates names and metadata once, here; subclasses only store bytes."""

    url: str  # "gs://bucket/prefix" or the directory

    @abstractmethod
    def check(self) -> None:
        """Raise SinkError unless the sink exists and can be written (a cheap probe)."""

    @abstractmethod
    def list_metadata(self) -> dict[str, dict[str, str]]:
        """``{"owner/name": custom metadata}`` of every digest, from one listing."""

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


def digest_key(relative: str) -> str | None:
    """``"owner/name"`` for a digest's path relative to the sink root, None for anything else."""
    owner, sep, filename = relative.partition("/")
    if not sep or owner == RUNS_DIR or not filename.endswith(".md"):
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
    return f"{owner}/{name}.md"


def report_path(execution: str, task_index: int) -> str:
    if not _EXECUTION_RE.fullmatch(execution) or execution in (".", ".."):
        raise ValueError(f"not a usable execution name: {execution!r}")
    if task_index < 0:
        raise ValueError(f"task index must not be negative, got {task_index}")
    return f"{RUNS_DIR}/{execution}/task-{task_index}.json"


def check_metadata(metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str, got {key!r}: {value!r}")
