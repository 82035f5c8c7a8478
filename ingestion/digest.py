"""Turn the commit a clone fetched into a gitingest text digest: fast, deterministic, bounded.

The digest is gitingest 0.3.1's text (``ingestion.gitingest_text``: summary, directory tree and
file contents, in gitingest's order), composed as ``summary + "\\n" + tree + "\\n" + content``,
for the commit ``HEAD`` of a bare clone. Trees and blobs are read straight from the fetched
objects (``ingestion.objects``: two ``git cat-file`` processes), never from a checkout. The
summary names the repository as gitingest does for a remote one: ``Repository: owner/name`` and
a tree rooted at ``owner-name/``.

What differs from stock ``gitingest.ingest()`` on a checkout of the same commit, and why:

* **No gitingest at run time.** The job owns the ~150 lines of gitingest it needs
  (``ingestion.gitingest_text``, with gitingest's MIT licence); a test compares the output
  with stock gitingest 0.3.1 byte for byte.
* **Speed.** No work tree is written and deleted (that was most of a cold run's kernel time);
  ignore patterns are compiled once (gitingest's defaults once per process) and checked with
  a few joined regular expressions (``ingestion.ignore``) instead of once per path and pattern.
* **Deterministic pattern order.** Stock keeps the patterns in a ``set``, so with negated
  (``!``) ``.gitignore`` rules the outcome depends on ``PYTHONHASHSEED``. We keep gitingest's
  default patterns, then every ``.gitignore`` and then every ``.gitingestignore`` (shallowest
  first, then by path), their lines in file order: later rules win, as in git.
* **No silent limits; one cap that says so.** gitingest stops at 10,000 files and 20 levels of
  directories without a word; here neither applies. What bounds a digest is
  ``DigestSettings.max_total_size`` (default 8 MiB, part of the fingerprint): the whole digest
  (summary, tree, headers and contents) stays within it, since nothing indexes a bigger
  document (Vertex AI Search: 10 MB). A digest that fits is whole. One that does not keeps the
  files a reader needs most — files at the root and READMEs first, then shallower before
  deeper, smaller before larger — and says so in its summary (``Files left out: …`` and
  ``Left out from: …``, the directories that lost most) and in its metadata
  (:meth:`DigestFile.metadata`). Files over ``max_file_size`` are left out as gitingest does.
* **Symlinks show their own target.** A symlink is listed as ``name -> target`` with the
  target text the link holds (``/etc/passwd``, ``../setup.py``), where gitingest shows only its
  last component (``passwd``, and nothing for ``/``). Nothing a link points at is ever read,
  and a symlinked ``.gitignore`` is not followed (git does not follow one either).
* **No token estimate, ever.** Stock downloads tiktoken's encoding at run time, silently drops
  the ``Estimated tokens`` line offline and hangs on a hanging network; the line is never here
  (stock's offline output).
* **Text decoding independent of the locale:** UTF-8 first, which is what stock does on any
  UTF-8 machine (the image's ``C.UTF-8``). A notebook that is not valid JSON is reported with
  its path in the repository, not the absolute path of wherever it was stored.
* **Non-UTF-8 file names** are shown with U+FFFD replacement characters (one per undecodable
  byte) instead of producing text that cannot be encoded; such files are still included.
  A non-UTF-8 ignore file is read with the undecodable bytes kept, and a malformed ignore
  line (``foo\\``) never matches, as in git; stock gitingest fails the repository on both.

``write_digest`` streams the digest to a file one file's text at a time, so neither the worker
nor the job ever holds a whole digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import BinaryIO

from ingestion import INGEST_VERSION, tree
from ingestion.cap import Cap, select
from ingestion.gitingest_text import (
    GITINGEST_VERSION,
    entry_order,
    file_block,
    file_text,
    summary,
)
from ingestion.ignore import IGNORE_FILES, IgnoreMatcher, default_matcher, repository_matcher
from ingestion.objects import SYMLINK_MODE, TREE_MODE, Head, Objects, TreeEntry
from ingestion.settings import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE
from ingestion.tree import Dir, Leaf, printable, pruned, tree_text

# What shapes the digest bytes besides our code and the settings: exact pins, the same in
# pyproject.toml and ingestion/requirements.lock (tests/test_packaging.py checks), and
# checked against the installed versions at start-up. The fingerprint reads these constants,
# never the installed versions, so it cannot change without a commit that changes a pin.
FINGERPRINT_PINS = {"pathspec": "1.1.1"}
DIGEST_FORMAT = f"gitingest {GITINGEST_VERSION}"
TOKEN_ESTIMATE = "none"


@dataclass(frozen=True)
class DigestSettings:
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE  # the whole digest, in bytes

    def fingerprint(self) -> str:
        """Short stable id of all that shapes the digest bytes (metadata ``ingest_version``)."""
        return _fingerprint(self.max_file_size, self.max_total_size)


@dataclass(frozen=True)
class Digest:
    text: str
    files: int
    bytes: int
    commit: str  # "" for an empty repository
    cap: Cap | None = None

    @property
    def capped(self) -> bool:
        return self.cap is not None


@dataclass(frozen=True)
class DigestFile:
    """A digest written to a file: what the upload and the metadata need, not the text."""

    path: Path
    files: int
    size: int
    sha256: str
    commit: str  # "" for an empty repository
    cap: Cap | None = None

    @property
    def capped(self) -> bool:
        return self.cap is not None

    def metadata(self) -> dict[str, str]:
        """Custom metadata beyond the job's own: a capped digest's reason and what it left out."""
        return self.cap.metadata() if self.cap else {}


@cache
def _fingerprint(max_file_size: int, max_total_size: int) -> str:
    payload = json.dumps(
        {
            "ingest_version": INGEST_VERSION,
            **FINGERPRINT_PINS,
            "format": DIGEST_FORMAT,
            "max_file_size": max_file_size,
            "max_total_size": max_total_size,
            "token_estimate": TOKEN_ESTIMATE,
        },
        sort_keys=True,
    )
    return f"v{INGEST_VERSION}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def init_worker() -> None:
    """Check the pins and compile gitingest's default patterns, once per worker process."""
    check_pins()
    default_matcher()


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


def digest_repository(git_dir: Path, settings: DigestSettings, *, label: str) -> Digest:
    """The digest of ``HEAD`` in ``git_dir`` (a bare clone, or a work tree's ``.git``), in
    memory; ``label`` is ``owner/name``."""
    buffer = io.BytesIO()
    done = _digest(git_dir, settings, label, buffer)
    text = buffer.getvalue().decode()
    return Digest(text, done.files, len(text.encode()), done.commit, done.cap)


def write_digest(git_dir: Path, settings: DigestSettings, *, label: str, out: Path) -> DigestFile:
    """The same digest as :func:`digest_repository`, streamed into the file ``out``.

    Only one file's text is in memory at a time (at most ``max_file_size`` decoded), so a
    worker's memory does not grow with the repository; the caller uploads from ``out``.
    """
    with out.open("w+b") as handle:
        done = _digest(git_dir, settings, label, handle)
    return DigestFile(out, done.files, done.size, done.sha256, done.commit, done.cap)


@dataclass
class _Done:
    files: int
    size: int
    sha256: str
    commit: str
    cap: Cap | None


def _digest(git_dir: Path, settings: DigestSettings, label: str, handle: BinaryIO) -> _Done:
    owner, _, name = label.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"label must be 'owner/name', got {label!r}")
    with Objects(git_dir) as objects:
        head = objects.head()
        root = Dir(f"{owner}-{name}", "")
        if head is not None:
            root = _build(objects, head, settings, root)
        files = tree.leaves(root)
        composer = _Composer(root, owner, name, objects)
        lengths: list[int] = []
        out = composer.write(handle, files, None, settings.max_total_size, lengths)
        cap = None
        if out.size > settings.max_total_size and files:
            kept, cap = select(composer, root, files, lengths, settings.max_total_size)
            out = composer.write(handle, kept, cap, None, [])
    commit = head.commit if head else ""
    return _Done(out.files, out.size, out.sha256, commit, cap)


def _build(objects: Objects, head: Head, settings: DigestSettings, root: Dir) -> Dir:
    """The commit's files gitingest would list, as a tree in gitingest's order."""
    sizes = objects.sizes()
    trees = objects.trees(head.tree)
    matcher = repository_matcher(_ignore_files(objects, trees, head.tree, sizes))
    _walk(trees, head.tree, matcher, _Present(sizes, settings.max_file_size), root)
    links = [leaf for leaf in tree.leaves(root) if leaf.link is not None]
    for leaf, target in zip(links, objects.blobs([leaf.oid for leaf in links]), strict=True):
        leaf.link = os.fsdecode(target)  # the link's own text; nothing it points at is read
    return root


@dataclass(frozen=True)
class _Present:
    """Which blobs a digest may read: in the clone and within ``max_file_size``."""

    sizes: dict[str, int]
    max_file_size: int

    def file(self, oid: str) -> bool:
        return self.sizes.get(oid, self.max_file_size + 1) <= self.max_file_size

    def link(self, oid: str) -> bool:
        return oid in self.sizes


def _ignore_files(
    objects: Objects, trees: dict[str, list[TreeEntry]], root: str, sizes: dict[str, int]
) -> list[tuple[str, bytes]]:
    """``(path, contents)`` of every ignore file in the commit that the clone holds: regular
    files only (a symlinked one is not followed), at any depth, ignored directories included."""
    names = {name.encode(): name for name in IGNORE_FILES}
    found: list[tuple[str, str]] = []
    stack = [(root, "")]
    while stack:
        oid, path = stack.pop()
        for entry in trees[oid]:
            rel = f"{path}/{os.fsdecode(entry.name)}" if path else os.fsdecode(entry.name)
            if entry.mode == TREE_MODE:
                stack.append((entry.oid, rel))
            elif entry.name in names and entry.is_file and entry.oid in sizes:
                found.append((rel, entry.oid))
    contents = objects.blobs([oid for _, oid in found])
    return [(rel, data) for (rel, _), data in zip(found, contents, strict=True)]


def _walk(
    trees: dict[str, list[TreeEntry]],
    root_oid: str,
    excluded: IgnoreMatcher,
    present: _Present,
    root: Dir,
) -> None:
    """gitingest's ``_process_node`` over the commit's trees, without its limits: entries in
    sorted order, ignored paths and unreadable blobs left out, empty directories dropped."""
    stack = [(root, root_oid)]
    visited: list[Dir] = []
    while stack:
        node, oid = stack.pop()
        visited.append(node)
        named = sorted(((os.fsdecode(e.name), e) for e in trees[oid]), key=lambda p: p[0])
        for name, entry in named:
            rel = f"{node.path}/{name}" if node.path else name
            if name in ("", ".", "..") or "/" in name or excluded(rel):
                continue  # git never makes such names; a hostile server might
            child = _child(entry, name, rel, present)
            if child is not None:
                node.children.append(child)
            if isinstance(child, Dir):
                stack.append((child, entry.oid))
    for node in reversed(visited):  # children before their parents
        node.children = [c for c in node.children if isinstance(c, Leaf) or c.children]
        node.children.sort(key=_entry_order)


def _child(entry: TreeEntry, name: str, rel: str, present: _Present) -> Dir | Leaf | None:
    if entry.mode == TREE_MODE:
        return Dir(name, rel)
    if entry.mode == SYMLINK_MODE and present.link(entry.oid):
        return Leaf(rel, name, entry.oid, link="")
    if entry.is_file and present.file(entry.oid):
        return Leaf(rel, name, entry.oid, link=None)
    # A submodule (an empty directory in a checkout), or a blob the clone's filter left out or
    # over max_file_size: gitingest lists none of them.
    return None


def _entry_order(node: Dir | Leaf) -> tuple[int, str]:
    return entry_order(node.name, isinstance(node, Leaf) and node.link is None)


@dataclass
class _Written:
    files: int
    size: int
    sha256: str


class _Composer:
    """Writes a digest of the files numbered in ``kept`` (all when None)."""

    def __init__(self, root: Dir, owner: str, name: str, objects: Objects) -> None:
        self.root = root
        self.owner = owner
        self.name = name
        self.objects = objects

    def summary(self, files: int, cap: Cap | None) -> str:
        text = summary(self.owner, self.name, files) + (cap.text() if cap else "")
        return printable(text)

    def summary_size(self, files: int, cap: Cap) -> int:
        return len(self.summary(files, cap).encode())

    def head(self, kept: set[int] | None, files: int, cap: Cap | None) -> bytes:
        """Summary and tree, with the newline after each."""
        root = self.root if kept is None else pruned(self.root, kept)
        return (self.summary(files, cap) + "\n" + printable(tree_text(root)) + "\n").encode()

    def write(
        self,
        handle: BinaryIO,
        leaves: list[Leaf],
        cap: Cap | None,
        stop_over: int | None,
        lengths: list[int],
    ) -> _Written:
        """Write the digest of ``leaves`` (in order) into ``handle``; each file's block size
        goes into ``lengths``. Past ``stop_over`` bytes nothing more is written (the size is
        still counted): such a digest is written again, capped."""
        handle.seek(0)
        handle.truncate()
        kept = None if cap is None else {leaf.n for leaf in leaves}
        sha = hashlib.sha256()
        size = 0
        for i, block in enumerate(self._pieces(leaves, kept, cap)):
            size += len(block)
            if i:
                lengths.append(len(block) - (i > 1))
            if stop_over is None or size <= stop_over:
                handle.write(block)
                sha.update(block)
        return _Written(len(leaves), size, sha.hexdigest())

    def _pieces(
        self, leaves: list[Leaf], kept: set[int] | None, cap: Cap | None
    ) -> Iterator[bytes]:
        yield self.head(kept, len(leaves), cap)
        contents = self.objects.blobs([leaf.oid for leaf in leaves if leaf.link is None])
        for i, leaf in enumerate(leaves):
            if leaf.link is None:
                text = file_block("FILE", leaf.path, file_text(leaf.path, next(contents)))
            else:
                text = file_block("SYMLINK", f"{leaf.path} -> {leaf.link}", "")
            yield (("\n" if i else "") + printable(text)).encode()
