"""`govctl status`, `cost` and `doctor` against a bucket of 20,000 digests, with and without
the job's summary (`_state/summary.json`): wall time and Cloud Storage requests.

    python -m tests.perf.bench_scale [--digests 20000] [--runs 3] [--before REF]

Starts the loopback cloud with a state directory (fake-gcs-server's filesystem backend, as
`govctl emulator start` runs it), fills a bucket with N digests written straight through the
storage client with the job's metadata (``owner/name.md``, ``text/markdown``, ``processedAt``
…; ~7 KB each, 138 MB at 20,000 as measured in issue 18), the failures file and the summary the
job's tasks would have written for them (``ingestion.summary.updated``, 4 shards, one
execution). A counting proxy (tests/support/counting_proxy.py) sits in front of the storage
server. Each command then runs R times as an operator types it (``python -m govctl CMD`` in a
fresh interpreter, imports included), first with the summary, then with the summary deleted
(the commands fall back to listing the bucket). ``--before REF`` also runs the govctl of that
git revision (``git archive REF govctl``) on the same bucket. Prints the median wall time and,
for the median run, the storage requests: all of them, object-listing pages, and listings
of the whole bucket (no prefix). The machine is shared: compare columns of one run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from govctl.emulator.server import Emulator  # noqa: E402
from govctl.gcp import clients  # noqa: E402
from ingestion import summary as job_summary  # noqa: E402
from tests.support.counting_proxy import CountingProxy  # noqa: E402

PROJECT = "bench-project"
REGION = "europe-west2"
BUCKET = "bench-digests"
TASKS = 4
EXECUTION = "govreposcrape-ingestion-bench1"
COMMANDS = ("status", "cost", "doctor")


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fill(project: str, bucket_name: str, digests: int, seed: int = 1) -> tuple[int, float]:
    """N digests with the job's metadata, the failures file and the job's summary of them;
    (total digest bytes, seconds taken)."""
    rng = random.Random(seed)
    bucket = clients.storage_client(project).bucket(bucket_name)
    now = datetime.now(UTC)
    items = []
    for i in range(digests):
        owner, name = f"org{i % 400}", f"repo-{i}"
        size = max(200, int(rng.lognormvariate(8.6, 0.6)))  # median ~5.4 KB, mean ~7 KB
        at = _stamp(now - timedelta(minutes=rng.randrange(60 * 24 * 30)))
        items.append((owner, name, size, at))

    def put(item: tuple[str, str, int, str]) -> None:
        owner, name, size, at = item
        blob = bucket.blob(f"{owner}/{name}.md")
        blob.metadata = {"org": owner, "repo": name, "url": f"https://github.com/{owner}/{name}",
                         "pushedAt": at, "processedAt": at, "commit": "0" * 40,
                         "size": str(size), "ingest_version": "bench"}  # fmt: skip
        blob.upload_from_string(b"x" * size, content_type="text/markdown; charset=utf-8")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, items))
    failures = {"hmrc/gone": {"reason": "not_found", "first_failed": _stamp(now),
                              "last_failed": _stamp(now), "failures": 3}}  # fmt: skip
    bucket.blob("_state/failures.json").upload_from_string(json.dumps(failures))
    summary = None
    for task in range(TASKS):
        mine = items[task::TASKS]
        shard = job_summary.ShardFigures(len(mine), sum(s for _, _, s, _ in mine), 0,
                                         tuple(at for *_, at in mine))  # fmt: skip
        result = job_summary.TaskResult(
            EXECUTION, task, TASKS, _stamp(now - timedelta(seconds=30)), _stamp(now), 0, None,
            None, {"processed": 0, "unchanged": len(mine)}, shard,
        )  # fmt: skip
        summary = job_summary.updated(summary, result, failures, now=_stamp(now))
    bucket.blob("_state/summary.json").upload_from_string(json.dumps(summary))
    return sum(s for _, _, s, _ in items), time.perf_counter() - t0


@dataclass(frozen=True)
class Measure:
    seconds: float
    requests: int
    listings: int
    whole: int
    exit_code: int


def run(command: str, proxy: CountingProxy, code: Path, runs: int) -> Measure:
    env = {**os.environ, "STORAGE_EMULATOR_HOST": proxy.url, "PYTHONPATH": str(code)}
    measures = []
    for _ in range(runs):
        proxy.reset()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "govctl", command], env=env,
                              capture_output=True, timeout=600)  # fmt: skip
        seconds = time.perf_counter() - t0
        measures.append(Measure(seconds, len(proxy.seen), len(proxy.listings()),
                                len(proxy.whole_bucket_listings()), proc.returncode))  # fmt: skip
    measures.sort(key=lambda m: m.seconds)
    return measures[len(measures) // 2]


# Runs the command R+1 times in one interpreter (of the govctl on PYTHONPATH) and prints the
# median of the last R: the command's own time, imports and the clients' first set-up left out.
_IN_PROCESS = """
import contextlib, io, statistics, sys, time
from govctl.cli.main import main
times = []
for i in range(int(sys.argv[2]) + 1):
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = main([sys.argv[1]])
    assert code in (0, 1), sink.getvalue()[-500:]  # doctor: 1, no job is deployed
    if i:
        times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def in_process(command: str, proxy: CountingProxy, code: Path, runs: int) -> float:
    """The median time of the command run repeatedly in one interpreter (imports done)."""
    env = {**os.environ, "STORAGE_EMULATOR_HOST": proxy.url, "PYTHONPATH": str(code)}
    argv = [sys.executable, "-c", _IN_PROCESS, command, str(runs)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                         check=True).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def checkout_of(ref: str, dest: Path) -> Path:
    """govctl as it is at ``ref``, extracted into ``dest`` (run with this interpreter)."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "govctl"], cwd=ROOT,
                             capture_output=True, check=True).stdout  # fmt: skip
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


Row = tuple[str, bool, str, Measure, float]  # govctl, summary, command, fresh, in process


def measure(proxy: CountingProxy, codes: dict[str, Path], runs: int) -> list[Row]:
    """Every command of every govctl, with the summary then without it."""
    rows: list[Row] = []
    for summary in (True, False):
        if not summary:
            clients.storage_client(PROJECT).bucket(BUCKET).blob("_state/summary.json").delete()
        for label, code in codes.items():
            for command in COMMANDS:
                fresh = run(command, proxy, code, runs)
                rows.append((label, summary, command, fresh, in_process(command, proxy, code,
                                                                          runs)))  # fmt: skip
    return rows


def report(rows: list[Row]) -> None:
    print(f"\n{'govctl':<18}{'summary':<9}{'command':<9}{'fresh s':>8}{'in process s':>14}"
          f"{'requests':>10}{'listing pages':>15}{'whole-bucket':>14}{'exit':>6}")  # fmt: skip
    for label, summary, command, m, inner in rows:
        print(f"{label:<18}{'yes' if summary else 'no':<9}{command:<9}{m.seconds:>8.2f}"
              f"{inner:>14.2f}{m.requests:>10}{m.listings:>15}{m.whole:>14}"
              f"{m.exit_code:>6}")  # fmt: skip
    inner_of = {(r[0], r[1], r[2]): r[4] for r in rows}
    before = next((r[0] for r in rows if r[0] != "now"), None)
    for command in COMMANDS:
        now, old = inner_of[("now", True, command)], inner_of[("now", False, command)]
        line = f"{command}: with the summary {now / old:.0%} of the listing fallback"
        if before is not None:
            line += f", {now / inner_of[(before, True, command)]:.0%} of {before}"
        print(line + " (in process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per command (median shown)")
    parser.add_argument("--before", metavar="REF", help="also run the govctl of this revision")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    os.chdir(work)
    os.environ.update(CLOUDSDK_CONFIG=str(work / "gcloud"), GOVCTL_PROJECT=PROJECT,
                      GOVCTL_REGION=REGION, GOVCTL_BUCKET_NAME=BUCKET)  # fmt: skip
    codes = {"now": ROOT}
    if args.before:
        codes[f"before ({args.before})"] = checkout_of(args.before, work / "before")
    with Emulator(state_dir=work / "state") as emu:
        os.environ.update(emu.env())
        clients.storage_client(PROJECT).create_bucket(BUCKET, location=REGION)
        size, seconds = fill(PROJECT, BUCKET, args.digests)
        print(f"filled gs://{BUCKET}: {args.digests} digests, {size / 1e6:.0f} MB, "
              f"summary and failures in {seconds:.1f} s")  # fmt: skip
        with CountingProxy(emu.storage_url) as proxy:
            rows = measure(proxy, codes, args.runs)
    report(rows)


if __name__ == "__main__":
    main()
