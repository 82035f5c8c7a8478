"""The ingestion job against the old sequential job on a generated feed (a script, not a test).

    python -m tests.perf.bench_ingestion [--repos 60] [--set mixed|medium] [--before REF]
        [--concurrency K] [--no-baseline] [--keep DIR]

Makes ``--repos`` bare repositories (``tests/perf/repos.py``; ``--set mixed``: 20 to 6,000
files, most a few hundred, binary assets, some files over 512 KiB; ``--set medium``: 200 to 500
files each), serves them with ``git daemon`` and runs, for this job (``python -m ingestion
--feed FILE --sink DIR``, default concurrency unless ``--concurrency``), for the job as it is at
the git revision ``--before REF`` (``git archive REF ingestion``, run with the same interpreter:
"before", e.g. ``--before main``) and for the baseline (``tests/perf/old_job.py``: clone, stock
gitingest, then compare ``pushedAt``, then write — one repository after another):

- **cold**: an empty directory sink;
- **no change**: the same feed again;
- **2% changed**: a new commit in 2% of the repositories (at least one), their ``pushedAt`` bumped.

For each run it prints wall time, repositories per second (feed size / time), clones served
by the git daemon (its upload-pack count), CPU seconds (user + system) of the **whole process
tree** (the command, its worker processes, every git it ran: this process is their child
subreaper and reaps them all, so the kernel's accounting is complete; the git daemon serving
the clones is not counted), the share of that CPU spent in the kernel, CPU milliseconds per
repository, and memory: the peak of the **sum of RSS over the whole process tree**, sampled
with psutil every 50 ms, and the largest single process seen. The sum counts pages shared
between forked workers once per process, so it overstates real use (an upper bound).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.perf.repos import SETS, make_bare_repos, push_change, tree_size_kb
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
    cpu: float = 0.0  # seconds, user + system, the whole process tree
    sys_cpu: float = 0.0  # seconds, system (kernel) only
    note: str = ""

    @property
    def rate(self) -> float:
        return self.repos / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_repo(self) -> float:
        return 1000 * self.cpu / self.repos if self.repos else 0.0


@dataclass
class Measured:
    seconds: float
    exit_code: int
    peak_tree_rss: int
    max_proc_rss: int
    cpu: float
    sys_cpu: float


def become_subreaper() -> None:
    """Orphans of the measured command (the digest workers' fork server outlives the job's main
    process by a moment) are re-parented to this process, which reaps them: then the kernel's
    children accounting holds the CPU of every process the command started."""
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans(keep: set[int]) -> None:
    """Wait for every child of this process except ``keep`` (the git daemon)."""
    while others := [c.pid for c in psutil.Process().children() if c.pid not in keep]:
        for pid in others:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def children_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def measure(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> Measured:
    """Run ``cmd`` and measure it (see the module docstring).

    Both memory figures come from sampling (``ru_maxrss`` is no use here: Linux carries the
    parent's high-water mark into a forked child, so every child would report ours).
    """
    peak = biggest = 0
    keep = {c.pid for c in psutil.Process().children()}
    cpu_before, sys_before = children_cpu()
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
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
    reap_orphans(keep)
    cpu_after, sys_after = children_cpu()
    return Measured(
        seconds, proc.returncode, peak, biggest, cpu_after - cpu_before, sys_after - sys_before
    )


def execution(scenario: str) -> str:
    return "bench-" + "".join(c if c.isalnum() else "-" for c in scenario)


def checkout_of(ref: str, dest: Path) -> Path:
    """The job (``ingestion/``) as it is at ``ref`` of this repository, extracted into ``dest``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "ingestion"], cwd=ROOT, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


class Bench:
    def __init__(
        self,
        work: Path,
        repos: int,
        concurrency: int | None,
        seed: int,
        baseline_python: str,
        kind: str = "mixed",
        before: Path | None = None,
    ) -> None:
        self.work = work
        self.baseline_python = baseline_python
        self.count = repos
        self.concurrency = concurrency
        self.seed = seed
        self.kind = kind
        self.before = before  # the job of another revision ("before"), extracted
        self.feed = work / "repos.json"
        self.runs: list[Run] = []
        self.server = GitServer(work / "git")
        self.entries: list[dict[str, object]] = []

    def prepare(self) -> None:
        started = time.monotonic()
        root = self.server.root
        root.mkdir(parents=True, exist_ok=True)
        shapes = make_bare_repos(root, self.count, self.seed, self.kind)
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
            f"{self.count} repositories ({self.kind}) in {time.monotonic() - started:.1f} s: "
            "files per repo "
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
        code = self.before if system == "before" and self.before else ROOT
        env = {**os.environ, "PYTHONPATH": str(code)}
        if system in ("job", "before"):
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
        served = self.server.upload_packs()
        log = self.work / f"{system}-{execution(scenario)}.log"
        m = measure(cmd, env, log, code)
        clones = self.server.upload_packs() - served
        note = self.summary(system, scenario, sink, log)
        run = Run(system, scenario, m.seconds, self.count, clones, m.peak_tree_rss,
                  m.max_proc_rss, m.exit_code, m.cpu, m.sys_cpu, note)  # fmt: skip
        self.runs.append(run)
        print(
            f"{system:8} {scenario:11} {m.seconds:8.1f} s  {run.rate:6.2f} repos/s  "
            f"CPU {m.cpu:7.1f} s ({_share(m.sys_cpu, m.cpu)} kernel, "
            f"{run.cpu_ms_per_repo:5.0f} ms/repo)  clones {clones:4}  "
            f"peak tree RSS {m.peak_tree_rss / MiB:6.0f} MiB  exit {m.exit_code}  {note}",
            flush=True,
        )
        return run

    def summary(self, system: str, scenario: str, sink: Path, log: Path) -> str:
        digests = sum(1 for _ in (sink / "bench").glob("*.md")) if (sink / "bench").exists() else 0
        if system in ("job", "before"):
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


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def table(runs: list[Run]) -> str:
    head = ("system", "run", "time s", "repos/s", "CPU s", "kernel", "CPU ms/repo", "clones",
            "peak tree RSS MiB", "max proc MiB")  # fmt: skip
    rows = [
        (r.system, r.scenario, f"{r.seconds:.1f}", f"{r.rate:.2f}", f"{r.cpu:.1f}",
         _share(r.sys_cpu, r.cpu), f"{r.cpu_ms_per_repo:.0f}", str(r.clones),
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
    for system in ("job", "before"):
        if (system, "cold") in by and ("baseline", "cold") in by:
            ratio = by[(system, "cold")].rate / by[("baseline", "cold")].rate
            out.append(f"cold throughput vs baseline, {system}: {ratio:.1f}x (target >= 5x)")
    if ("before", "cold") in by:
        before = by[("before", "cold")]
        out.append(
            f"cold CPU per repository: before {before.cpu_ms_per_repo:.0f} ms "
            f"({_share(before.sys_cpu, before.cpu)} kernel), job {job_cold.cpu_ms_per_repo:.0f} ms "
            f"({_share(job_cold.sys_cpu, job_cold.cpu)} kernel): "
            f"{job_cold.cpu / before.cpu:.0%} of before (target <= 50%); "
            f"cold wall time {job_cold.seconds / before.seconds:.0%} of before"
        )
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
    parser.add_argument("--set", choices=SETS, default="mixed", help="repository shapes")
    parser.add_argument(
        "--before", metavar="REF", help="also run the job of this git revision (e.g. main)"
    )
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
    become_subreaper()
    before = checkout_of(args.before, work / "before") if args.before else None
    bench = Bench(
        work, args.repos, args.concurrency, args.seed, args.baseline_python, args.set, before
    )
    systems = ["job", *(["before"] if before else []), *([] if args.no_baseline else ["baseline"])]
    print(f"cpus: {os.cpu_count()} (affinity {len(os.sched_getaffinity(0))}); work dir {work}")
    if args.before:
        rev = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
        print(f"before: the job at {args.before} ({rev}); job: this working tree")
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
