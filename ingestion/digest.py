"""Turn a checked-out repository into a gitingest text digest: fast, deterministic, safe.

The digest is gitingest 0.3.1's own output (summary, directory tree and file contents, built by
its ``FileSystemNode``, ``_process_file``/``_process_symlink``, limits and ``output_formatter``)
for the checkout, composed as ``summary + "\\n" + tree + "\\n" + content``. The summary names the
repository the way gitingest does for a remote repository: ``Repository: owner/name`` and a tree
rooted at ``owner-name/``, so nothing depends on where the checkout happens to live.

What differs from calling stock ``gitingest.ingest()`` on the same directory, and why:

* **Speed.** Stock gitingest compiles its ~160 ignore patterns into a ``PathSpec`` again for every
  path it visits (milliseconds each). ``_Walker`` (our copy of
  ``gitingest.ingestion._process_node``) compiles them once per repository, checks a path with
  a few joined regular expressions instead of one per pattern (``IgnoreMatcher``), and uses
  ``os.scandir`` entries instead of repeated ``stat`` calls. The output is byte-identical and
  20-50x faster with pathspec 1.1 (``tests/perf/bench_digest.py``: 3,000 files 23 s -> 1.2 s,
  20,000 files 104 s -> 1.8 s on 2 vCPUs).
* **Deterministic pattern order.** Stock keeps the patterns in a ``set``, so with negated
  (``!``) ``.gitignore`` rules the outcome depends on ``PYTHONHASHSEED``. We keep gitingest's
  default patterns (sorted), then every ``.gitignore`` and then every ``.gitingestignore`` file
  (shallowest first, then by path), their lines in file order: later rules win, as in git.
  Without negations the order cannot matter, and the output equals stock's.
* **Deterministic traversal.** Directory entries are visited in sorted order rather than in the
  file system's order. This only shows when gitingest's own limits (10,000 files, 500 MB,
  depth 20) cut a repository short, or names differ only by case (gitingest sorts
  case-insensitively and keeps listing order for ties): stock output then depends on the
  machine, ours does not.
* **No token estimate, ever.** Stock downloads tiktoken's ``o200k_base`` encoding at run time,
  silently drops the ``Estimated tokens`` line offline and hangs on a hanging network. The
  digest is composed from gitingest's summary prefix, tree and file texts (``_Walked.pieces``),
  never through ``format_node``, which is where stock counts tokens: tiktoken is never asked
  for anything and the line is never there (stock's offline output).
* **A smaller total limit.** gitingest leaves out a file that would take the included contents
  over 500 MB; we do the same at ``DigestSettings.max_total_size`` (``--max-total-size``,
  default 8 MiB, part of the fingerprint), since nothing indexes a bigger document and every
  in-flight digest costs memory (or in-memory ``/tmp`` on Cloud Run). The limit bounds the
  whole digest, summary, tree and per-file headers included (``_write_within``): Vertex AI
  Search's per-document limit applies to all of it. ``write_digest`` streams
  the digest to a file one file's text at a time, so neither the worker nor the job ever holds
  a whole digest.
* **Text decoding independent of the locale.** Stock tries ``locale.getpreferredencoding()``
  first; we pin it to ``UTF-8``, which is what stock does on any UTF-8 machine (the image's
  ``C.UTF-8``).
* **Non-UTF-8 file names** are shown with U+FFFD replacement characters (one per undecodable
  byte) instead of producing text that cannot be encoded; such files are still included.
  A non-UTF-8 ignore file is read with the undecodable bytes kept, and a malformed ignore
  line (``foo\\``) never matches, as in git; stock gitingest fails the repository on both.
* **Nothing outside the checkout is read.** gitingest already lists a symlink as
  ``name -> target`` without content and never descends into a symlinked directory; the one
  place it follows a link is an ignore file (``.gitignore`` that is a symlink to ``/etc/...``).
  We read an ignore file only when its real path is a regular file inside the checkout.

All gitingest internals used here are pinned to gitingest==0.3.1 (checked at start-up); the
process-wide changes to gitingest live in ``_patch_gitingest`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

from ingestion import INGEST_VERSION
from ingestion.ignore import IgnoreMatcher, ignore_patterns
from ingestion.settings import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE

GITINGEST_VERSION = "0.3.1"
# What shapes the digest bytes besides our code and the settings: exact pins, the same in
# pyproject.toml and ingestion/requirements.lock (tests/test_packaging.py checks), and
# checked against the installed versions at start-up. The fingerprint reads these constants,
# never the installed versions, so it cannot change without a commit that changes a pin.
FINGERPRINT_PINS = {"gitingest": GITINGEST_VERSION, "pathspec": "1.1.1"}
TOKEN_ESTIMATE = "none"
# What stock gitingest tries on a UTF-8 machine: locale.getpreferredencoding() ("UTF-8") first.
_ENCODINGS = ("UTF-8", "utf-8", "utf-16", "utf-16le", "utf-8-sig", "latin")


@dataclass(frozen=True)
class DigestSettings:
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    # Like gitingest's MAX_TOTAL_SIZE_BYTES: a file that would take the repository's included
    # file contents over this is left out, in the walk's (sorted) order.
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE

    def fingerprint(self) -> str:
        """Short stable id of all that shapes the digest bytes (metadata ``ingest_version``)."""
        return _fingerprint(self.max_file_size, self.max_total_size)


@dataclass(frozen=True)
class Digest:
    text: str
    files: int
    bytes: int
    capped: bool = False  # files were left out because of ``max_total_size``


@dataclass(frozen=True)
class DigestFile:
    """A digest written to a file: what the upload and the metadata need, not the text."""

    path: Path
    files: int
    size: int
    sha256: str
    capped: bool


@cache
def _fingerprint(max_file_size: int, max_total_size: int) -> str:
    payload = json.dumps(
        {
            "ingest_version": INGEST_VERSION,
            **FINGERPRINT_PINS,
            "max_file_size": max_file_size,
            "max_total_size": max_total_size,
            "token_estimate": TOKEN_ESTIMATE,
        },
        sort_keys=True,
    )
    return f"v{INGEST_VERSION}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


_ready = False


def init_worker() -> None:
    """Import and patch gitingest once per process, keeping it from logging anything.

    Importing gitingest runs its ``configure_logging()``: loguru writes to stderr and the root
    logging handlers (and every existing logger's handlers) are replaced. We put the standard
    logging configuration back as it was and remove loguru's sinks, so the caller's stdout stays
    the job's JSON log lines only.
    """
    global _ready
    if _ready:
        return
    saved = _snapshot_logging()
    import gitingest  # noqa: F401  (runs configure_logging)
    from gitingest.utils.logging_config import InterceptHandler
    from loguru import logger

    logger.remove()
    _restore_logging(saved, drop=InterceptHandler)
    check_pins()
    _patch_gitingest()
    _ready = True


def check_pins() -> None:
    """Refuse to digest with other versions than the fingerprint names (it would lie)."""
    for package, pinned in FINGERPRINT_PINS.items():
        found = version(package)
        if found != pinned:
            raise RuntimeError(
                f"ingestion.digest is pinned to {package}=={pinned} (FINGERPRINT_PINS), found "
                f"{found}: install ingestion/requirements.lock, or change the pin in "
                "ingestion/digest.py, pyproject.toml and the lock together"
            )


def _snapshot_logging() -> dict[str, tuple[list[logging.Handler], bool, int]]:
    manager = logging.root.manager
    loggers: dict[str, Any] = {"": logging.root, **manager.loggerDict}
    return {
        name: (list(lg.handlers), lg.propagate, lg.level)
        for name, lg in loggers.items()
        if isinstance(lg, logging.Logger)
    }


def _restore_logging(
    saved: dict[str, tuple[list[logging.Handler], bool, int]], *, drop: type[logging.Handler]
) -> None:
    for name, (handlers, propagate, level) in saved.items():
        lg = logging.getLogger(name or None)
        lg.handlers = [h for h in handlers if not isinstance(h, drop)]
        lg.propagate = propagate
        lg.setLevel(level)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, drop)]


def _patch_gitingest() -> None:
    """The only process-wide change to gitingest 0.3.1 (see the module docstring)."""
    from gitingest.schemas import filesystem

    filesystem._get_preferred_encodings = lambda: list(_ENCODINGS)  # type: ignore[assignment]


def digest_checkout(path: Path, settings: DigestSettings, *, label: str) -> Digest:
    """Digest the checkout at ``path`` (its ``.git`` is ignored); ``label`` is ``owner/name``."""
    walked = _walk(path, settings, label)
    buffer = io.BytesIO()
    _write_within(walked, settings.max_total_size, buffer)
    text = buffer.getvalue().decode()
    return Digest(
        text=text, files=walked.node.file_count, bytes=len(text.encode()), capped=walked.capped
    )


def write_digest(path: Path, settings: DigestSettings, *, label: str, out: Path) -> DigestFile:
    """The same digest as :func:`digest_checkout`, streamed into the file ``out``.

    Only one file's text is in memory at a time (at most ``max_file_size`` decoded), so a
    worker's memory does not grow with the repository; the caller uploads from ``out``.
    """
    walked = _walk(path, settings, label)
    with out.open("w+b") as handle:
        size, sha = _write_within(walked, settings.max_total_size, handle)
    return DigestFile(out, walked.node.file_count, size, sha, walked.capped)


def _write_within(walked: _Walked, limit: int, handle: BinaryIO) -> tuple[int, str]:
    """Write the digest to ``handle``; when the whole of it (summary, tree, per-file headers
    and contents) is over ``limit``, leave out the last files in walk order and write it again.

    The walk already stopped adding file contents at ``limit``; the headers and the tree come
    on top, so an over-limit digest is rare and only that one is written twice. Leaving files
    out only shortens the summary and the tree, so one pass of dropping usually fits.
    """
    while True:
        handle.seek(0)
        handle.truncate()
        sha = hashlib.sha256()
        size = 0
        contents: list[int] = []
        for kind, piece in walked.pieces():
            data = piece.encode()
            handle.write(data)
            sha.update(data)
            size += len(data)
            if kind == "file":
                contents.append(len(data))
        if size <= limit or not contents:
            return size, sha.hexdigest()
        walked.keep_first(_files_that_fit(walked, contents, limit))


def _files_that_fit(walked: _Walked, contents: list[int], limit: int) -> int:
    """The most files (a prefix in walk order) whose whole digest is within ``limit``: the
    summary and the tree of a prefix are computed exactly (no file is read for them)."""
    prefix = [0]
    for n in contents:
        prefix.append(prefix[-1] + n)
    low, high = 0, len(contents) - 1  # keeping them all is over the limit
    while low < high:
        mid = (low + high + 1) // 2
        if walked.head_size(mid) + prefix[mid] <= limit:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass
class _Walked:
    node: Any
    query: Any
    capped: bool

    def keep_first(self, count: int) -> None:
        """Leave out every file after the first ``count`` (walk order), and emptied folders."""
        self.node = _pruned(self.node, {id(leaf) for leaf in list(_leaves(self.node))[:count]})
        self.capped = True

    def head_size(self, count: int) -> int:
        """Bytes of the summary and the tree if only the first ``count`` files were kept."""
        kept = {id(leaf) for leaf in list(_leaves(self.node))[:count]}
        walked = _Walked(_pruned(self.node, kept), self.query, self.capped)
        summary, tree = (piece for _, piece in itertools.islice(walked.pieces(), 2))
        return len(summary.encode()) + len(tree.encode())

    def pieces(self) -> Iterator[tuple[str, str]]:
        """gitingest's ``format_node`` for a directory, as ``summary\ntree\ncontent``, in parts.

        Its ``_gather_file_contents`` joins the file texts with ``"\n"``, nested per directory;
        the walk keeps no empty directory, so that is the flat list of files joined the same way.
        """
        from gitingest.output_formatter import _create_summary_prefix, _create_tree_structure

        summary = _create_summary_prefix(self.query) + f"Files analyzed: {self.node.file_count}\n"
        tree = "Directory structure:\n" + _create_tree_structure(self.query, node=self.node)
        yield "summary", _printable(summary) + "\n"
        yield "tree", _printable(tree) + "\n"
        for i, leaf in enumerate(_leaves(self.node)):
            yield "file", ("\n" if i else "") + _printable(leaf.content_string)


def _pruned(node: Any, kept: set[int]) -> Any:
    """A copy of the directory ``node`` with only the leaves in ``kept`` (and the folders that
    still hold any), counted as ``_Walker.walk`` counts."""
    from gitingest.schemas import FileSystemNodeType

    copy = dataclasses.replace(node, children=[], size=0, file_count=0, dir_count=0)
    for child in node.children:
        if child.type == FileSystemNodeType.DIRECTORY:
            sub = _pruned(child, kept)
            if not sub.children:
                continue
            copy.size += sub.size
            copy.file_count += sub.file_count
            copy.dir_count += 1 + sub.dir_count
            copy.children.append(sub)
        elif id(child) in kept:
            copy.size += child.size
            copy.file_count += 1
            copy.children.append(child)
    return copy


def _leaves(node: Any) -> Iterator[Any]:
    from gitingest.schemas import FileSystemNodeType

    for child in node.children:
        if child.type == FileSystemNodeType.DIRECTORY:
            yield from _leaves(child)
        else:
            yield child


def _walk(path: Path, settings: DigestSettings, label: str) -> _Walked:
    init_worker()
    from gitingest.schemas import (
        FileSystemNode,
        FileSystemNodeType,
        FileSystemStats,
        IngestionQuery,
    )

    owner, _, name = label.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"label must be 'owner/name', got {label!r}")
    root = Path(path).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"not a checkout directory: {root}")
    query = IngestionQuery(
        user_name=owner,
        repo_name=name,
        slug=f"{owner}-{name}",
        local_path=root,
        id="00000000-0000-0000-0000-000000000000",
        max_file_size=settings.max_file_size,
    )
    node = FileSystemNode(
        name=query.slug, type=FileSystemNodeType.DIRECTORY, path_str=".", path=root
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        walker = _Walker(root, settings, FileSystemStats())
        walker.walk(node)
    return _Walked(node, query, walker.capped)


_SURROGATES = re.compile("[\ud800-\udfff]+")


def _printable(text: str) -> str:
    """Replace the undecodable bytes of non-UTF-8 file names (surrogate escapes) with U+FFFD."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return _SURROGATES.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    try:
        return match.group().encode(errors="surrogateescape").decode(errors="replace")
    except UnicodeEncodeError:  # a lone surrogate from JSON (notebooks), not from a file name
        return "\ufffd" * len(match.group())


class _Walker:
    """``gitingest.ingestion._process_node`` with the ignore matcher compiled once, sorted."""

    def __init__(self, root: Path, settings: DigestSettings, stats: Any) -> None:
        self.root = root
        self.max_file_size = settings.max_file_size
        self.max_total_size = settings.max_total_size
        self.stats = stats
        self.excluded = IgnoreMatcher(ignore_patterns(root))
        self.capped = False

    def walk(self, node: Any) -> None:
        from gitingest.ingestion import _process_file, _process_symlink, limit_exceeded
        from gitingest.schemas import FileSystemNode, FileSystemNodeType

        if limit_exceeded(self.stats, depth=node.depth):
            return
        if self.stats.total_size >= self.max_total_size:  # as limit_exceeded does with its own
            self.capped = True
            return
        with os.scandir(node.path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = entry.name if node.path_str == "." else f"{node.path_str}/{entry.name}"
            if self.excluded(rel):
                continue
            sub_path = node.path / entry.name
            if entry.is_symlink():
                _process_symlink(sub_path, node, self.stats, self.root)
            elif entry.is_file():
                size = entry.stat().st_size
                if size > self.max_file_size:
                    continue
                if self.stats.total_size + size > self.max_total_size:
                    self.capped = True  # what _process_file does with gitingest's own limit
                    continue
                _process_file(sub_path, node, self.stats, self.root)
            elif entry.is_dir():
                child = FileSystemNode(
                    name=entry.name,
                    type=FileSystemNodeType.DIRECTORY,
                    path_str=rel,
                    path=sub_path,
                    depth=node.depth + 1,
                )
                self.walk(child)
                if not child.children:
                    continue
                node.children.append(child)
                node.size += child.size
                node.file_count += child.file_count
                node.dir_count += 1 + child.dir_count
        node.sort_children()
