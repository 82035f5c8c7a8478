"""Stock gitingest vs ``ingestion.digest.digest_repository`` on generated repositories (a script).

    python tests/perf/bench_digest.py [--runs 3] [--keep DIR]

For each repository shape it prints the median wall time of stock ``gitingest.ingest()`` on the
checkout (run offline, in a fresh subprocess per run, timing only the call) and of
``digest_repository`` on the same commit's objects (in a fresh subprocess too, after
``init_worker()``), the ratio, and whether the outputs are identical once stock's
``Directory: <path>`` summary line is replaced by our ``Repository: owner/name``. Stock stops
at 10,000 files without a word, so on the 20,000-file shape they differ: ours is capped at
8 MiB and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "B", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "B", "GIT_COMMITTER_EMAIL": "b@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}  # fmt: skip

STOCK = r"""
import json, sys, time
import gitingest
from loguru import logger
logger.remove()
path = sys.argv[1]
t = time.perf_counter()
summary, tree, content = gitingest.ingest(path, max_file_size=int(sys.argv[2]))
elapsed = time.perf_counter() - t
sys.stdout.write(json.dumps({"s": elapsed, "text": summary + "\n" + tree + "\n" + content}))
"""

OURS = r"""
import json, sys, time
from pathlib import Path
from ingestion.digest import DigestSettings, digest_repository, init_worker
init_worker()
t = time.perf_counter()
git_dir, settings = Path(sys.argv[1]) / ".git", DigestSettings(int(sys.argv[2]))
d = digest_repository(git_dir, settings, label="owner/name")
elapsed = time.perf_counter() - t
sys.stdout.write(json.dumps({"s": elapsed, "text": d.text}))
"""

# Extensions gitingest ignores file by file (each one still goes through the matcher).
ASSETS = ("png", "svg", "jpg", "map", "pyc", "log")
SOURCES = ("py", "js", "ts", "md", "json", "yml", "html", "css")


def make_checkout(root: Path, text_files: int, asset_files: int, seed: int) -> Path:
    """A checkout-like tree: nested dirs, small text files, ignored assets, one huge file."""
    rng = random.Random(seed)
    repo = root / "owner-name"
    dirs = [Path(".")]
    for i in range(max(1, (text_files + asset_files) // 40)):
        parent = rng.choice(dirs)
        if len(parent.parts) < 6:
            dirs.append(parent / f"pkg{i}")
    for i in range(text_files + asset_files):
        folder = repo / rng.choice(dirs)
        folder.mkdir(parents=True, exist_ok=True)
        if i < text_files:
            lines = range(rng.randint(3, 40))
            body = "".join(f"line {n} of file {i}: {rng.random()}\n" for n in lines)
            (folder / f"mod{i}.{rng.choice(SOURCES)}").write_text(body)
        else:
            blob = os.urandom(rng.randint(10, 200))
            (folder / f"asset{i}.{rng.choice(ASSETS)}").write_bytes(blob)
    (repo / "README.md").write_text("# bench\n")
    (repo / "data.csv").write_text("x,y\n" * 200_000)  # over the size limit
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True)
    return repo


def run(script: str, repo: Path, max_file_size: int, offline: bool) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if offline:  # stock gitingest asks tiktoken to download; make that fail at once
        env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
        env.update(TIKTOKEN_CACHE_DIR=str(repo.parent / "no-tiktoken-cache"))
        env.pop("no_proxy", None)
    out = subprocess.run(
        [sys.executable, "-c", script, str(repo), str(max_file_size)],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    result = json.loads(out.stdout)
    return result["s"], result["text"]


def bench(label: str, repo: Path, runs: int, max_file_size: int = 524288) -> None:
    stock_times, our_times = [], []
    stock_text = ours_text = ""
    for _ in range(runs):
        t, stock_text = run(STOCK, repo, max_file_size, offline=True)
        stock_times.append(t)
        t, ours_text = run(OURS, repo, max_file_size, offline=False)
        our_times.append(t)
    first, _, rest = stock_text.partition("\n")
    if first.startswith("Directory: "):
        stock_text = "Repository: owner/name\n" + rest
    stock_s, ours_s = statistics.median(stock_times), statistics.median(our_times)
    print(
        f"{label:<44} stock {stock_s:7.2f} s   ours {ours_s:6.2f} s   "
        f"ratio {stock_s / ours_s:5.1f}x   identical: {stock_text == ours_text}"
        f"   ({len(ours_text.encode()):,} bytes)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the checkouts here and keep them")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-digest-"))
    shapes = [
        ("3,000 files (2,500 text, 500 ignored assets)", 2_500, 500),
        ("20,000 files (9,000 text, 11,000 ignored)", 9_000, 11_000),
    ]
    try:
        for i, (label, text_files, asset_files) in enumerate(shapes):
            root = base / f"shape{i}"
            repo = root / "owner-name"
            if not repo.exists():
                make_checkout(root, text_files, asset_files, seed=i)
            bench(label, repo, args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
