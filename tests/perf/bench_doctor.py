"""How long `govctl doctor` takes on the loopback cloud, and what the memory watcher costs.

    python tests/perf/bench_doctor.py

Deploys a complete setup (tests/govctl/test_doctor.py's ``deploy``) with three finished
executions, then prints the median in-process ``diagnose`` time over 5 runs, the wall time of
``python -m govctl doctor`` in a fresh interpreter (imports included), and the median time of
one memory sample of a task (``limits.tree_memory``: a scan of /proc).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from govctl import config
from govctl.emulator.run import limits
from govctl.emulator.server import Emulator
from govctl.services import doctor
from tests.govctl import test_doctor as setup


def main() -> None:
    work = Path(tempfile.mkdtemp())
    os.chdir(work)
    os.environ.update(
        CLOUDSDK_CONFIG=str(work / "gcloud"),
        GOVCTL_PROJECT=setup.PROJECT,
        GOVCTL_REGION=setup.REGION,
    )
    with Emulator() as emu:
        os.environ.update(emu.env())
        emu.cloud.image_map["*/doctor-test@*"] = f"{sys.executable} -c 'print(1)'"
        setup.deploy(emu)
        for _ in range(3):
            setup.run_and_wait()
        cfg = config.load()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            report = doctor.diagnose(cfg)
            times.append(time.perf_counter() - t0)
        print(f"diagnose, in process: median {statistics.median(times):.3f} s "
              f"({report.failing} failing)")  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "govctl", "doctor"], capture_output=True)
        print(f"govctl doctor, fresh interpreter: {time.perf_counter() - t0:.2f} s "
              f"(exit {proc.returncode})")  # fmt: skip
    task = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(5)"], start_new_session=True
    )
    time.sleep(0.3)
    samples = []
    for _ in range(50):
        t0 = time.perf_counter()
        limits.tree_memory(task.pid)
        samples.append(time.perf_counter() - t0)
    task.kill()
    task.wait()
    print(f"one memory sample: median {statistics.median(samples) * 1000:.2f} ms "
          f"({len(os.listdir('/proc'))} /proc entries)")  # fmt: skip


if __name__ == "__main__":
    main()
