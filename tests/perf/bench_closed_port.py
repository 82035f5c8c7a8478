"""How long each command takes to fail against an emulator that is down, and to stop at Ctrl-C.

    python -m tests.perf.bench_closed_port [--repeat 3] [--cap 20] [--compare OLD_CHECKOUT]

Each command of ``tests/govctl/test_deadlines.py`` runs as a fresh process (interpreter start-up
and imports included, as an operator sees it) with ``GOVCTL_EMULATOR_HOST`` and
``STORAGE_EMULATOR_HOST`` on a closed loopback port; the median and worst of ``--repeat`` runs
are printed. Then a few commands run against a black hole (a listener that never answers) and
get SIGINT once connected: the time from the signal to the process's end, and its exit status.
Target: every command under 3 s; Ctrl-C under 1 s, exit 130.

``--compare DIR`` runs the same with the govctl package of another checkout (e.g. a
``git worktree`` of an older commit) first on ``PYTHONPATH``, side by side; a run that has not
ended after ``--cap`` seconds is killed and shown as ``>CAP``.
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


def _closed(argv: list[str], home: str, cap: float, source: str | None) -> float | None:
    env = _env(home, f"127.0.0.1:{closed_port()}", source)
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "govctl", *argv], env=env, cwd=home,
                       input="a-value\n", capture_output=True, text=True, timeout=cap)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - started


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


def _fmt(times: list[float | None], cap: float) -> tuple[str, str]:
    if any(t is None for t in times):
        return f">{cap:g}", f">{cap:g}"
    done = [t for t in times if t is not None]
    return f"{statistics.median(done):.2f}", f"{max(done):.2f}"


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
        header = "".join(f"{name + ' median':>14} {name + ' worst':>12}" for name, _ in sources)
        print(f"{'closed port: govctl …':<44}{header}")
        worst = 0.0
        for argv, _ in CALLS:
            cells = []
            for _, source in sources:
                times = [_closed(argv, home, args.cap, source) for _ in range(args.repeat)]
                median, high = _fmt(times, args.cap)
                cells.append(f"{median:>14} {high:>12}")
                if source is None:
                    worst = max(worst, *(t if t is not None else args.cap for t in times))
            print(f"{' '.join(argv):<44}{''.join(cells)}")
        print(f"slowest (this checkout): {worst:.2f} s")
        print()
        print(f"{'Ctrl-C against a black hole: govctl …':<44}"
              + "".join(f"{name:>27}" for name, _ in sources))  # fmt: skip
        for argv in INTERRUPTED:
            cells = [_interrupted(argv, home, args.cap, source) for _, source in sources]
            print(f"{' '.join(argv):<44}" + "".join(f"{c:>27}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
