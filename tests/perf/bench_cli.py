"""How fast govctl's read commands answer the loopback cloud, as an operator types them.

    python -m tests.perf.bench_cli [--repeat 5]

Starts ``govctl emulator`` in the background on free ports, sets the project up as the demo
does (sample repositories, ``govctl setup -y``, ``govctl deploy -y``, one
``govctl run --limit 3``), then times each read command as a fresh process (interpreter
start-up and imports included) and prints the median and worst of ``--repeat`` runs.
Target: every read command under 1 s; ``status`` under 2 s.
``doctor`` exits 1 when a check fails; its time is printed all the same.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from govctl import demo

READS: list[list[str]] = [
    ["--help"],
    ["run", "--help"],
    ["deploy", "--help"],
    ["config", "show"],
    ["executions", "list"],
    ["executions", "show", "--latest"],
    ["logs", "-n", "50"],
    ["schedule", "show"],
    ["cost"],
    ["status"],
    ["doctor"],
    ["alerts", "show"],
    ["secrets", "list"],
    ["index", "status"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from ingestion.demo import build

    with tempfile.TemporaryDirectory(prefix="govctl-bench-") as tmp:
        work = Path(tmp)
        settings = demo._write_settings(work, build(work))
        base = {"PATH": "/usr/bin:/bin", "HOME": tmp, "GOVCTL_CONFIG": str(settings)}
        env = {**base, **demo._start_emulator(work, base)}
        try:
            for step in (["setup", "-y"], ["deploy", "-y"], ["run", "--limit", "3"]):
                if demo._govctl(step, env, work, show=False) != 0:
                    print(f"setup step failed: govctl {' '.join(step)}", file=sys.stderr)
                    return 1
            print(f"{'command':<34} {'median':>8} {'worst':>8}")
            for argv in READS:
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    proc = subprocess.run(
                        [sys.executable, "-m", "govctl", *argv],
                        env=env, cwd=work, capture_output=True, check=False,
                    )  # fmt: skip
                    times.append(time.perf_counter() - t0)
                    if proc.returncode not in ((0, 1) if argv[0] == "doctor" else (0,)):
                        print(f"govctl {' '.join(argv)} failed:", proc.stderr.decode()[-400:])
                        return 1
                name = "govctl " + " ".join(argv)
                print(f"{name:<34} {statistics.median(times):>7.2f}s {max(times):>7.2f}s")
        finally:
            demo._govctl(["emulator", "stop", "--state-dir", str(work / "emulator")], env, work,
                         show=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
