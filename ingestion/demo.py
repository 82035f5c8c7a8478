"""``python -m ingestion.demo``: the job on an embedded sample, with no network and no account.

Creates the sample repositories of ``ingestion/sample/repos.json`` as local git repositories
(in ``.govctl-demo/`` by default), writes a feed in the xgov schema pointing at them with
``file://`` URLs (plus a few entries the job must reject), and runs ``python -m ingestion``
with ``--allow-local`` into a directory sink (``./digests`` by default).

Commits are made with fixed dates and authors, so the repositories are the same on every run:
running the demo twice shows the incremental skip (the second run ingests nothing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ingestion.cli import main as job_main

FIXED_DATE = "2024-01-01T00:00:00Z"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "govctl demo",
    "GIT_AUTHOR_EMAIL": "demo@example.invalid",
    "GIT_COMMITTER_NAME": "govctl demo",
    "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    "GIT_AUTHOR_DATE": FIXED_DATE,
    "GIT_COMMITTER_DATE": FIXED_DATE,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def sample() -> dict[str, Any]:
    text = resources.files("ingestion").joinpath("sample/repos.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
    )


def _filler(path: str, size: int, *, binary: bool) -> bytes:
    """Deterministic content of ``size`` bytes: CSV-like text, or bytes that are not text."""
    if binary:
        seed = hashlib.sha256(path.encode()).digest()
        block = b"\x89PNG\r\n\x1a\n\x00" + seed * 8
        return (block * (size // len(block) + 1))[:size]
    lines = []
    total = 0
    n = 0
    while total < size:
        line = f"{n},practice-{n:06d},{(n * 7919) % 100000},{n % 97}\n"
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines).encode()[:size]


def make_repository(path: Path, spec: dict[str, Any]) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=path)
    if spec.get("empty"):
        return  # a repository with no commit at all
    contents: dict[str, bytes] = {k: v.encode() for k, v in spec.get("files", {}).items()}
    for rel, size in spec.get("generated", {}).items():
        contents[rel] = _filler(rel, size, binary=False)
    for rel, size in spec.get("binary", {}).items():
        contents[rel] = _filler(rel, size, binary=True)
    for rel, data in contents.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    _git("add", "-A", cwd=path)
    _git("commit", "-q", "-m", "Sample repository for the ingestion demo", cwd=path)


def build(work: Path) -> Path:
    """Create the sample repositories under ``work`` and return the feed's path."""
    data = sample()
    feed: list[dict[str, Any]] = []
    for spec in data["repositories"]:
        path = work / "repos" / spec["owner"] / spec["name"]
        make_repository(path, spec)
        feed.append(
            {
                "owner": spec["owner"],
                "name": spec["name"],
                "url": path.resolve().as_uri(),
                "pushedAt": spec["pushedAt"],
                "archived": False,
                "language": spec.get("language"),
            }
        )
    feed.extend(data["rejected_examples"])
    feed_path = work / "repos.json"
    feed_path.write_text(json.dumps(feed, indent=2) + "\n", encoding="utf-8")
    return feed_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.demo",
        description="Run the ingestion job on locally created sample repositories.",
    )
    parser.add_argument("--out", type=Path, default=Path("digests"), help="default ./digests")
    parser.add_argument(
        "--work", type=Path, default=Path(".govctl-demo"), help="default ./.govctl-demo"
    )
    parser.add_argument("--force", action="store_true", help="redo every repository")
    args = parser.parse_args(argv)

    if shutil.which("git") is None:
        print("python -m ingestion.demo: error: git is not installed", file=sys.stderr)
        return 1
    feed = build(args.work)
    job_args = [
        "--feed", str(feed),
        "--sink", str(args.out),
        "--allow-local",
        "--tasks", "1",
        "--task-index", "0",
    ]  # fmt: skip
    if args.force:
        job_args.append("--force")
    code = job_main(job_args, environ={k: v for k, v in os.environ.items() if k != "FORCE_REINDEX"})

    out = args.out.resolve()
    digests = sorted(p.relative_to(out) for p in out.glob("*/*.md"))
    print(f"\n{len(digests)} digests in {out}:")
    for rel in digests:
        print(f"  {rel}")
    print(
        f"run reports in {out / '_runs'}; run the demo again to see the incremental skip.",
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
