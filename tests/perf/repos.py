"""Bare git repositories of realistic shapes for the ingestion benchmark, made fast.

Each repository is one commit written with ``git fast-import`` (no working tree, no
``git add``): ~100 repositories of a few hundred files take seconds. Shapes follow what the
public-sector feed looks like: file counts log-normal around a few hundred (clipped to
20..6,000, with the extremes always present; or, for the ``medium`` set, 200..500 each),
nested directories, mostly small text files, some binary assets, and in some repositories
one file over the digest's 512 KiB limit.
"""

from __future__ import annotations

import math
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.git import GIT_ENV, git

MIN_FILES, MAX_FILES, MEDIAN_FILES = 20, 6000, 250
MEDIUM_FILES = (200, 500)
SETS = ("mixed", "medium")
OVERSIZE_SHARE = 0.15  # repositories with one file over 512 KiB
BINARY_SHARE = 0.5  # repositories with some binary assets
TEXT_EXTENSIONS = ("py", "js", "ts", "md", "json", "yml", "html", "css", "go", "java", "txt", "sh")
BINARY_EXTENSIONS = ("png", "jpg", "ico", "woff2", "pdf", "bin")
_VOCABULARY = (
    "def return import class self value data config service request response user record "
    "for while if else try except with async await const let function export default module "
    "http client server handler error logger cache queue index table query schema field "
    "payment tax benefit claim citizen council department licence permit address postcode"
)
WORDS = _VOCABULARY.split()
COMMITTER = "Bench <bench@example.invalid> 1735689600 +0000"


@dataclass(frozen=True)
class Shape:
    name: str
    files: int  # text files
    binaries: int
    oversize: int  # files over 512 KiB (0 or 1)


def shapes(count: int, seed: int = 1, kind: str = "mixed") -> list[Shape]:
    """``count`` deterministic shapes. ``mixed``: the first is the 6,000-file giant, the second
    tiny, the rest log-normal around 250 files. ``medium``: a few hundred files each."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if kind == "medium":
            files = rng.randint(*MEDIUM_FILES)
        elif i == 0:
            files = MAX_FILES
        elif i == 1:
            files = MIN_FILES
        else:
            drawn = rng.lognormvariate(math.log(MEDIAN_FILES), 1.0)
            files = int(min(MAX_FILES, max(MIN_FILES, drawn)))
        binaries = int(files * rng.uniform(0.02, 0.1)) if rng.random() < BINARY_SHARE else 0
        oversize = 1 if rng.random() < OVERSIZE_SHARE else 0
        out.append(Shape(f"r{i:03d}", files, binaries, oversize))
    return out


class _Text:
    """Pseudo source text: windows of one pre-built corpus (fast; distinct blobs)."""

    def __init__(self, rng: random.Random) -> None:
        lines = []
        for _ in range(40_000):
            indent = "    " * rng.randrange(3)
            lines.append(indent + " ".join(rng.choices(WORDS, k=rng.randrange(2, 12))))
        self.corpus = "\n".join(lines).encode()
        self.rng = rng

    def take(self, size: int) -> bytes:
        start = self.rng.randrange(0, len(self.corpus) - size)
        return self.corpus[start : start + size]


def _paths(rng: random.Random, total: int) -> list[str]:
    dirs = [""]
    for _ in range(max(1, total // 15)):
        parent = rng.choice(dirs)
        if parent.count("/") < 5:
            dirs.append(f"{parent}{rng.choice(WORDS)}{len(dirs)}/")
    return [f"{rng.choice(dirs)}f{i}" for i in range(total)]


def _stream(shape: Shape, rng: random.Random, text: _Text) -> bytes:
    """A fast-import stream: one commit on refs/heads/main holding the whole tree."""
    chunks = [
        b"commit refs/heads/main\n",
        f"committer {COMMITTER}\n".encode(),
        b"data 7\ninitial\n",
    ]

    def add(path: str, content: bytes) -> None:
        chunks.append(f"M 100644 inline {path}\ndata {len(content)}\n".encode())
        chunks.append(content + b"\n")

    add("README.md", b"# " + shape.name.encode() + b"\n\n" + text.take(600))
    paths = _paths(rng, shape.files + shape.binaries)
    for path in paths[: shape.files]:
        size = int(min(60_000, rng.lognormvariate(math.log(1500), 1.0)))
        add(f"{path}.{rng.choice(TEXT_EXTENSIONS)}", text.take(max(size, 20)))
    for path in paths[shape.files :]:
        add(f"{path}.{rng.choice(BINARY_EXTENSIONS)}", rng.randbytes(rng.randrange(1_000, 60_000)))
    if shape.oversize:
        big = b"".join(text.take(100_000) for _ in range(rng.randrange(6, 20)))
        add("data/export.csv", big)
    return b"".join(chunks)


def fast_import(repo: Path, stream: bytes) -> None:
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=repo,
        input=stream,
        env={**GIT_ENV},
        check=True,
        capture_output=True,
    )


def make_bare_repos(root: Path, count: int, seed: int = 1, kind: str = "mixed") -> list[Shape]:
    """``root/<name>`` bare repositories (served by ``git daemon`` as ``<name>``)."""
    rng = random.Random(seed)
    text = _Text(rng)
    made = shapes(count, seed, kind)
    for shape in made:
        repo = root / shape.name
        git("init", "-q", "--bare", "-b", "main", repo)
        # Lets the job's clone filter out blobs over the size limit (partial clone).
        git("config", "uploadpack.allowFilter", "true", cwd=repo)
        fast_import(repo, _stream(shape, rng, text))
    return made


def push_change(repo: Path, serial: int) -> None:
    """A new commit on main that edits one file (a repository pushed since the last run)."""
    body = f"change {serial}\n".encode()
    stream = b"".join(
        [
            b"commit refs/heads/main\n",
            f"committer {COMMITTER}\n".encode(),
            b"data 7\nchange\n",
            b"from refs/heads/main^0\n",
            f"M 100644 inline CHANGELOG.md\ndata {len(body)}\n".encode(),
            body + b"\n",
        ]
    )
    fast_import(repo, stream)


def tree_size_kb(repo: Path) -> int:
    """What GitHub's ``size`` field would roughly say: the packed size, in KB."""
    out = git("count-objects", "-v", cwd=repo)
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    return int(fields.get("size-pack", "0")) + int(fields.get("size", "0"))
