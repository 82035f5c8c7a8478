"""How long each command takes to fail against an emulator that is down, and to stop at Ctrl-C.

    python -m tests.perf.bench_closed_port [--repeat 3] [--cap 20] [--compare OLD_CHECKOUT]

Each command of ``tests/govctl/test_deadlines.py`` runs as a fresh process with
``GOVCTL_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST`` on a closed loopback port. Two figures,
medians of ``--repeat`` runs:

- ``process``: the wall time an operator sees (interpreter start-up and imports included);
- ``command``: the time inside ``main()`` in a process that imported the Google libraries
  beforehand, i.e. what the command spends on the cloud that is down.

Then a few commands run against a black hole (a listener that never answers) and get SIGINT
once connected: the time from the signal to the process's end, and its exit status.
Target: every command under 3 s; Ctrl-C under 1 s, exit 130. ``config show`` (no cloud call)
is the start-up baseline.

``--compare DIR`` runs the same with the govctl package of another checkout (e.g. ``git
archive`` of an older commit) first on ``PYTHONPATH``, side by side; a run that has not ended
after ``--cap`` seconds is killed and shown as ``>CAP``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.govctl.test_deadlines import CALLS, PROJECT
from tests.support.black_hole import BlackHole, closed_port

INTERRUPTED = [["status"], ["doctor"], ["schedule", "show"], ["logs", "-n", "5"]]
BASELINE = [["config", "show"]]
# Imports every Google library a command may load, then times main(argv) alone.
TIMED = """
import sys, time
from google.cloud import (artifactregistry_v1, billing_v1, discoveryengine_v1, iam_admin_v1,
    monitoring_v3, resourcemanager_v3, run_v2, scheduler_v1, secretmanager_v1, service_usage_v1,
    storage)
from google.cloud.devtools import cloudbuild_v1
from google.cloud.logging_v2.services import logging_service_v2
from govctl.cli.main import main
started = time.monotonic()
main(sys.argv[1:])
sys.stderr.write(f"\\nBENCH {time.monotonic() - started:.3f}\\n")
"""


def _env(home: str, address: str, source: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "CLOUDSDK_CONFIG": os.path.join(home, "no-gcloud"),
        "GOVCTL_EMULATOR_HOST": address,
        "STORAGE_EMULATOR_HOST": f"http://{address}",
        "GOVCTL_PROJECT": PROJECT,
        "GOVCTL_JOB_SECRETS": "GITHUB_TOKEN=github-token",
    }
    if source is not None:
        env["PYTHONPATH"] = source
    return env


def _closed(argv: list[str], home: str, cap: float, source: str | None) -> tuple[float, float]:
    """(process seconds, command seconds); ``inf`` when not ended within ``cap``."""
    env = _env(home, f"127.0.0.1:{closed_port()}", source)
    run = {"env": env, "cwd": home, "input": "a-value\n", "capture_output": True, "text": True}
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "govctl", *argv], timeout=cap, **run)
        process = time.monotonic() - started
        proc = subprocess.run([sys.executable, "-c", TIMED, *argv], timeout=cap, **run)
    except subprocess.TimeoutExpired:
        return float("inf"), float("inf")
    line = [x for x in proc.stderr.splitlines() if x.startswith("BENCH ")][-1]
    return process, float(line.split()[1])


def _interrupted(argv: list[str], home: str, cap: float, source: str | None) -> str:
    with BlackHole() as hole:
        proc = subprocess.Popen([sys.executable, "-m", "govctl", *argv], cwd=home,
                                env=_env(home, hole.address, source), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            if not hole.wait_for(1, timeout=cap) or proc.poll() is not None:
                return "no call"
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=cap)
            except subprocess.TimeoutExpired:
                return f">{cap:g} s"
            return f"{time.monotonic() - sent:.2f} s (exit {code})"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _cell(times: list[float], cap: float) -> str:
    median = statistics.median(times)
    return f">{cap:g}" if median == float("inf") else f"{median:.2f}"


def _label(argv: list[str]) -> str:
    text = " ".join(argv)
    return text if len(text) <= 40 else text[:37] + "..."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cap", type=float, default=20.0)
    parser.add_argument("--compare", type=Path, help="another checkout's root, run side by side")
    args = parser.parse_args()
    sources: list[tuple[str, str | None]] = [("this", None)]
    if args.compare is not None:
        sources.insert(0, ("other", str(args.compare.resolve())))
    with tempfile.TemporaryDirectory(prefix="govctl-down-") as home:
        header = "".join(f"{name + ' process':>15}{name + ' command':>15}" for name, _ in sources)
        print(f"{'closed port: govctl …':<42}{header}")
        slowest = (0.0, "")
        for argv in BASELINE + [argv for argv, _ in CALLS]:
            cells = []
            for _, source in sources:
                runs = [_closed(argv, home, args.cap, source) for _ in range(args.repeat)]
                process = [r[0] for r in runs]
                command = [r[1] for r in runs]
                cells.append(f"{_cell(process, args.cap):>15}{_cell(command, args.cap):>15}")
                if source is None and argv not in BASELINE:
                    slowest = max(slowest, (statistics.median(process), _label(argv)))
            print(f"{_label(argv):<42}{''.join(cells)}")
        print(f"slowest process (this checkout): {slowest[0]:.2f} s, govctl {slowest[1]}")
        print()
        print(f"{'Ctrl-C against a black hole: govctl …':<42}"
              + "".join(f"{name:>24}" for name, _ in sources))  # fmt: skip
        for argv in INTERRUPTED:
            cells = [_interrupted(argv, home, args.cap, source) for _, source in sources]
            print(f"{_label(argv):<42}" + "".join(f"{c:>24}" for c in cells))
        load = os.getloadavg()
        print(f"\nload average {load[0]:.1f} on {os.cpu_count()} CPUs (a shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
