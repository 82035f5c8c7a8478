"""The ingestion job against the old sequential job on a generated feed (a script, not a test).

    python -m tests.perf.bench_ingestion [--repos 60] [--concurrency K] [--keep DIR]

Makes ``--repos`` bare repositories of realistic shapes (``tests/perf/repos.py``: 20 to 6,000
files, most a few hundred, binary assets, some files over 512 KiB), serves them with
``git daemon`` and runs, for this job (``python -m ingestion --feed FILE --sink DIR``, default
concurrency unless ``--concurrency``) and for the baseline (``tests/perf/old_job.py``: clone,
stock gitingest, then compare ``pushedAt``, then write — one repository after another):

- **cold**: an empty directory sink;
- **no change**: the same feed again;
- **2% changed**: a new commit in 2% of the repositories (at least one), their ``pushedAt`` bumped.

For each run it prints wall time, repositories per second (feed size / time), clones served
by the git daemon (its upload-pack count), and memory: the peak of the **sum of RSS over the
whole process tree** (the command and all its descendants: worker processes, git), sampled with
psutil every 50 ms, and the largest single process seen. The sum counts pages shared between
forked workers once per process, so it overstates real use (an upper bound).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.perf.repos import make_bare_repos, push_change, tree_size_kb
from tests.support.git import GitServer

ROOT = Path(__file__).resolve().parents[2]
PUSHED_AT = "2025-01-01T00:00:00Z"
CHANGED_AT = "2025-01-02T00:00:00Z"
SAMPLE_S = 0.05
MiB = 1024 * 1024


@dataclass
class Run:
    system: str
    scenario: str
    seconds: float
    repos: int
    clones: int
    peak_tree_rss: int  # bytes, sum over the process tree, sampled
    max_proc_rss: int  # bytes, largest single process, sampled
    exit_code: int
    note: str = ""

    @property
    def rate(self) -> float:
        return self.repos / self.seconds if self.seconds else 0.0


def measure(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int, int, int]:
    """Run ``cmd``; return (seconds, exit code, peak tree RSS, largest single-process RSS).

    Both memory figures come from sampling (``ru_maxrss`` is no use here: Linux carries the
    parent's high-water mark into a forked child, so every child would report ours).
    """
    peak = biggest = 0
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        root = psutil.Process(proc.pid)
        while True:
            sizes = []
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            for member in tree:
                with contextlib.suppress(psutil.Error):  # exited between listing and reading
                    sizes.append(member.memory_info().rss)
            peak = max(peak, sum(sizes))
            biggest = max(biggest, *sizes, 0)
            if proc.poll() is not None:
                break
            time.sleep(SAMPLE_S)
        seconds = time.monotonic() - started
    return seconds, proc.returncode, peak, biggest


def execution(scenario: str) -> str:
    return "bench-" + "".join(c if c.isalnum() else "-" for c in scenario)


class Bench:
    def __init__(
        self, work: Path, repos: int, concurrency: int | None, seed: int, baseline_python: str
    ) -> None:
        self.work = work
        self.baseline_python = baseline_python
        self.count = repos
        self.concurrency = concurrency
        self.seed = seed
        self.feed = work / "repos.json"
        self.runs: list[Run] = []
        self.server = GitServer(work / "git")
        self.entries: list[dict[str, object]] = []

    def prepare(self) -> None:
        started = time.monotonic()
        root = self.server.root
        root.mkdir(parents=True, exist_ok=True)
        shapes = make_bare_repos(root, self.count, self.seed)
        self.server.start()
        self.entries = [
            {
                "owner": "bench",
                "name": shape.name,
                "url": self.server.url(shape.name),
                "pushedAt": PUSHED_AT,
                "archived": False,
                "size": tree_size_kb(root / shape.name),
            }
            for shape in shapes
        ]
        self.write_feed()
        files = sorted(s.files + s.binaries for s in shapes)
        print(
            f"{self.count} repositories in {time.monotonic() - started:.1f} s: files per repo "
            f"min {files[0]}, median {files[len(files) // 2]}, max {files[-1]}, total "
            f"{sum(files)}; {sum(s.oversize for s in shapes)} with a file over 512 KiB, "
            f"{sum(1 for s in shapes if s.binaries)} with binary files",
            flush=True,
        )

    def write_feed(self) -> None:
        self.feed.write_text(json.dumps(self.entries))

    def change(self, share: float) -> int:
        """New commits in ``share`` of the repositories, spread over the feed."""
        changed = max(1, math.ceil(self.count * share))
        step = self.count / changed
        for k in range(changed):
            entry = self.entries[int(k * step + step / 2)]
            push_change(self.server.root / str(entry["name"]), k)
            entry["pushedAt"] = CHANGED_AT
        self.write_feed()
        return changed

    def run(self, system: str, scenario: str) -> Run:
        sink = self.work / f"sink-{system}"
        sink.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if system == "job":
            cmd = [sys.executable, "-m", "ingestion", "--feed", str(self.feed),
                   "--sink", str(sink), "--allow-host", self.server.host]  # fmt: skip
            if self.concurrency:
                cmd += ["--concurrency", str(self.concurrency)]
            env["CLOUD_RUN_EXECUTION"] = execution(scenario)
        else:
            cmd = [self.baseline_python, "-m", "tests.perf.old_job", "--feed", str(self.feed),
                   "--sink", str(sink)]  # fmt: skip
            # Stock gitingest asks tiktoken to download an encoding: make that fail at once
            # (no network here) instead of hanging.
            env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
            env.update(NO_PROXY="", TIKTOKEN_CACHE_DIR=str(self.work / "no-tiktoken"))
            env.pop("no_proxy", None)
        before = self.server.upload_packs()
        log = self.work / f"{system}-{execution(scenario)}.log"
        seconds, code, peak, biggest = measure(cmd, env, log)
        clones = self.server.upload_packs() - before
        note = self.summary(system, scenario, sink, log)
        run = Run(system, scenario, seconds, self.count, clones, peak, biggest, code, note)
        self.runs.append(run)
        print(
            f"{system:8} {scenario:11} {seconds:8.1f} s  {run.rate:6.2f} repos/s  "
            f"clones {clones:4}  peak tree RSS {peak / MiB:6.0f} MiB  exit {code}  {note}",
            flush=True,
        )
        return run

    def summary(self, system: str, scenario: str, sink: Path, log: Path) -> str:
        digests = sum(1 for _ in (sink / "bench").glob("*.md")) if (sink / "bench").exists() else 0
        if system == "job":
            report = sink / "_runs" / execution(scenario) / "task-0.json"
            if report.exists():
                counts = json.loads(report.read_text())["counts"]
                return (
                    f"digests {digests}; processed {counts['processed']} unchanged "
                    f"{counts['unchanged']} rewritten {counts['rewritten']} failed "
                    f"{counts['failed']}"
                )
            return f"digests {digests}; no run report (see {log})"
        lines = log.read_text(errors="replace").strip().splitlines()
        return f"digests {digests}; {lines[-1] if lines else 'no output'}"


def table(runs: list[Run]) -> str:
    head = ("system", "run", "time s", "repos/s", "clones", "peak tree RSS MiB", "max proc MiB")
    rows = [
        (r.system, r.scenario, f"{r.seconds:.1f}", f"{r.rate:.2f}", str(r.clones),
         f"{r.peak_tree_rss / MiB:.0f}", f"{r.max_proc_rss / MiB:.0f}")
        for r in runs
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in [head, *rows]]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def verdict(runs: list[Run]) -> list[str]:
    by = {(r.system, r.scenario): r for r in runs}
    out = []
    job_cold = by[("job", "cold")]
    if ("baseline", "cold") in by:
        ratio = job_cold.rate / by[("baseline", "cold")].rate
        out.append(f"cold throughput vs baseline: {ratio:.1f}x (target >= 3x)")
    nochange = by[("job", "no change")]
    out.append(
        f"no-change run: {nochange.clones} clones, {nochange.seconds / job_cold.seconds:.1%} of "
        "the cold run (target: 0 clones, < 15%)"
    )
    peak = max(r.peak_tree_rss for r in runs if r.system == "job")
    out.append(f"job peak tree RSS: {peak / MiB:.0f} MiB (target < 1024 MiB)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=60, help="feed size (default 60)")
    parser.add_argument("--concurrency", type=int, help="the job's --concurrency (its default)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true", help="run only the job")
    parser.add_argument(
        "--baseline-python",
        default=sys.executable,
        help="interpreter for the baseline (default: this one); e.g. a venv with other "
        "versions of gitingest's dependencies",
    )
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingestion-"))
    if args.keep:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    bench = Bench(work, args.repos, args.concurrency, args.seed, args.baseline_python)
    systems = ["job"] if args.no_baseline else ["job", "baseline"]
    print(f"cpus: {os.cpu_count()} (affinity {len(os.sched_getaffinity(0))}); work dir {work}")
    try:
        bench.prepare()
        for system in systems:
            bench.run(system, "cold")
            bench.run(system, "no change")
        changed = bench.change(0.02)
        print(f"pushed a new commit to {changed} repositories", flush=True)
        for system in systems:
            bench.run(system, "2% changed")
    finally:
        bench.server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(bench.runs))
    print()
    for line in verdict(bench.runs):
        print(line)
    return 0 if all(r.exit_code == 0 for r in bench.runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
