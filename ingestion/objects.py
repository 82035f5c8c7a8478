"""Read one commit's trees and blobs from a bare, partial clone: two ``git cat-file`` processes.

The digest needs the commit's tree (every path, mode and blob id) and the contents of some
blobs. Both come straight from the objects the clone fetched, with no work tree:

* ``git cat-file --batch-check --batch-all-objects`` lists every object the clone holds, with
  its size. A blob it does not list was left out by the partial-clone filter (over the size
  limit) and is never asked for: git would try to fetch it from the promisor remote (every
  protocol is forbidden here, so git would die instead).
* one ``git cat-file --batch`` answers every read: ``HEAD``, the trees level by level, then
  the blobs. Names are written in chunks small enough for the pipe to hold a whole chunk, and
  its answers are read before the next chunk, so neither process can block the other.

Both run with the clone's hardening (``ingestion.clone.git_command``) and no protocol allowed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from ingestion.clone import git_command, git_environment

# Names per write: 512 names of 65 bytes (a SHA-256 name and its newline) fits a 64 KiB pipe.
_CHUNK = 512
_SIZES = "--batch-check=%(objectname) %(objectsize)"
TREE_MODE = 0o040000
SYMLINK_MODE = 0o120000
GITLINK_MODE = 0o160000


class ObjectsError(Exception):
    """git could not read the clone's objects (a broken clone, or git died)."""


@dataclass(frozen=True)
class TreeEntry:
    mode: int
    name: bytes
    oid: str

    @property
    def is_file(self) -> bool:
        """A regular file, executable or not (git's 100644, 100755 and old 100664)."""
        return self.mode & 0o170000 == 0o100000


@dataclass(frozen=True)
class Answer:
    name: str  # the object's name (a commit's, when the question was HEAD)
    kind: str | None  # blob, tree, commit, tag; None when git found nothing
    data: bytes


@dataclass(frozen=True)
class Head:
    commit: str
    tree: str


class Objects:
    """The objects of the git directory ``git_dir``; use as a context manager."""

    def __init__(self, git_dir: Path) -> None:
        prefix = [f"--git-dir={git_dir}", "cat-file"]
        env = git_environment()
        self._listing = subprocess.Popen(
            git_command([*prefix, "--batch-all-objects", "--unordered", _SIZES]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._batch = subprocess.Popen(
            git_command([*prefix, "--batch"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._sizes: dict[str, int] | None = None

    def __enter__(self) -> Objects:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for proc in (self._batch, self._listing):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    def sizes(self) -> dict[str, int]:
        """``{object name: size}`` of every object the clone holds."""
        if self._sizes is None:
            out, err = self._listing.communicate()
            if self._listing.returncode != 0:
                raise ObjectsError(f"git cat-file --batch-all-objects failed: {_text(err)}")
            pairs = (line.split(" ") for line in out.decode("ascii").splitlines())
            self._sizes = {name: int(size) for name, size in pairs}
        return self._sizes

    def head(self) -> Head | None:
        """The commit ``HEAD`` names and its tree; None for an empty repository."""
        answer = next(self.read(["HEAD"]))
        if answer.kind is None:
            return None
        if answer.kind != "commit" or not answer.data.startswith(b"tree "):
            raise ObjectsError(f"HEAD is a {answer.kind}, not a commit")
        return Head(answer.name, answer.data[5 : answer.data.index(b"\n")].decode("ascii"))

    def trees(self, root: str) -> dict[str, list[TreeEntry]]:
        """Every tree under ``root`` (itself included), parsed, by object name."""
        found: dict[str, list[TreeEntry]] = {}
        level = [root]
        while level:
            for name, answer in zip(level, self.read(level), strict=True):
                if answer.kind != "tree":
                    raise ObjectsError(f"tree {name} is missing from the clone")
                found[name] = parse_tree(answer.data, len(name) // 2)
            subtrees = (e.oid for name in level for e in found[name] if e.mode == TREE_MODE)
            level = [oid for oid in dict.fromkeys(subtrees) if oid not in found]
        return found

    def blobs(self, names: Sequence[str]) -> Iterator[bytes]:
        """The contents of ``names`` (all held by the clone), in order."""
        for name, answer in zip(names, self.read(names), strict=True):
            if answer.kind != "blob":
                raise ObjectsError(f"blob {name} is missing from the clone")
            yield answer.data

    def read(self, names: Sequence[str]) -> Iterator[Answer]:
        """git's answer for each name (``kind`` None for a name git does not find).

        Every answer of a chunk is read even if the caller stops early, so the next read
        starts in step with git."""
        stdin, stdout = _pipes(self._batch)
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            try:
                stdin.write("".join(f"{name}\n" for name in chunk).encode())
                stdin.flush()
            except BrokenPipeError:
                raise ObjectsError(f"git cat-file --batch died: {self._stderr()}") from None
            pending = len(chunk)
            try:
                while pending:
                    pending -= 1
                    yield self._answer(stdout)
            finally:
                while pending and self._batch.returncode is None:
                    pending -= 1
                    self._answer(stdout)

    def _answer(self, stdout: IO[bytes]) -> Answer:
        header = stdout.readline()
        if not header.endswith(b"\n"):
            raise ObjectsError(f"git cat-file --batch died: {self._stderr()}")
        fields = header.split()
        if len(fields) != 3:  # "<name> missing" (or "ambiguous")
            return Answer("", None, b"")
        name, kind, size = fields
        data = stdout.read(int(size))
        if len(data) != int(size) or stdout.read(1) != b"\n":
            raise ObjectsError(f"git cat-file --batch died: {self._stderr()}")
        return Answer(name.decode("ascii"), kind.decode("ascii"), data)

    def _stderr(self) -> str:
        self._batch.kill()
        _, err = self._batch.communicate()
        return _text(err)


def parse_tree(data: bytes, raw_size: int) -> list[TreeEntry]:
    """A tree object's entries: ``<octal mode> <name>\\0<raw object name>`` each."""
    entries = []
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        end = nul + 1 + raw_size
        oid = data[nul + 1 : end].hex()
        entries.append(TreeEntry(int(data[at:space], 8), data[space + 1 : nul], oid))
        at = end
    return entries


def _pipes(proc: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    if proc.stdin is None or proc.stdout is None:
        raise ObjectsError("git cat-file --batch has no pipes")
    return proc.stdin, proc.stdout


def _text(err: bytes) -> str:
    return err.decode(errors="replace").strip()[-600:] or "no message"
