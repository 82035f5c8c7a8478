"""Where the live acceptance suite runs: Google Cloud, or the loopback cloud.

``live``: the project in ``GOVCTL_LIVE_PROJECT`` (region ``GOVCTL_LIVE_REGION``, default
us-central1), with Application Default Credentials (`gcloud auth application-default login`),
the real feed and GitHub; skipped, with the reason, when the variable is unset.
``emulator``: `govctl emulator` on free ports, the job's sample repositories as local git
repositories (``--allow-local``). Both run the same commands in the same order (`govctl` in a
subprocess, as an operator types it); only the endpoints and the feed differ.

Every name the suite creates carries one random suffix (job, scheduler job, bucket, data store,
both service accounts, image repository): two runs, or a run beside a real deployment, never
meet. (Cloud Build's staging bucket ``gs://PROJECT_cloudbuild`` is the project's, gcloud's too:
it is made if missing and stays.)
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LIVE_ENV = "GOVCTL_LIVE_PROJECT"
LIVE_REGION_ENV = "GOVCTL_LIVE_REGION"
# The emulator's storage (fake-gcs-server) puts every bucket in US-CENTRAL1, whatever it is
# asked: in that region `doctor` sees the bucket where the job is.
EMULATOR_REGION = "us-central1"
EMULATOR_PROJECT = "govctl-live-suite"
# Per command: Cloud Build, an execution or an import take minutes on Google Cloud.
STEP_TIMEOUT = {"emulator": 240.0, "live": 1800.0}


@dataclass
class Target:
    """Where the suite runs, the settings of this run, and a way to type `govctl …`."""

    kind: str  # "emulator" or "live"
    project: str
    region: str
    suffix: str
    work: Path
    env: dict[str, str] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"govctl-live-{self.suffix}"

    @property
    def bucket(self) -> str:
        return f"govctl-live-{self.suffix}-{self.project}"[:63].rstrip("-")

    @property
    def cleanup(self) -> str:
        """What takes this run's resources away should the suite be stopped before its end."""
        names = " ".join(f"{k}={v}" for k, v in self.env.items() if k.startswith("GOVCTL_"))
        return (
            f"{names} govctl destroy --delete-bucket --confirm-bucket {self.bucket} "
            "--delete-service-account --delete-secrets"
        )

    def govctl(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """``govctl ARGS`` as an operator types it; its output goes to the transcript."""
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "govctl", *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout or STEP_TIMEOUT[self.kind],
            check=False,
        )
        took = time.monotonic() - started
        self.transcript.append(
            f"$ govctl {shlex.join(args)}   # exit {proc.returncode}, {took:.1f}s\n"
            f"{proc.stdout}{proc.stderr}"
        )
        return proc


def _settings(project: str, region: str, suffix: str) -> dict[str, str]:
    """The run's names, all with the suffix; a small job (1 vCPU, 2 GiB, 30 minutes)."""
    name = f"govctl-live-{suffix}"
    return {
        "GOVCTL_PROJECT": project,
        "GOVCTL_REGION": region,
        "GOVCTL_JOB_NAME": name,
        "GOVCTL_SCHEDULE_NAME": name,
        "GOVCTL_BUCKET_NAME": f"{name}-{project}"[:63].rstrip("-"),
        "GOVCTL_INDEX_DATA_STORE": name,
        "GOVCTL_JOB_SERVICE_ACCOUNT": f"{name}@{project}.iam.gserviceaccount.com",
        "GOVCTL_BUILD_SERVICE_ACCOUNT": f"{name}-b@{project}.iam.gserviceaccount.com",
        "GOVCTL_JOB_IMAGE": f"{region}-docker.pkg.dev/{project}/{name}/ingestion",
        "GOVCTL_JOB_CPU": "1",
        "GOVCTL_JOB_MEMORY": "2Gi",
        "GOVCTL_JOB_TASK_TIMEOUT": "30m",
        "GOVCTL_JOB_TASKS": "1",
        # Once a year: the scheduler exists and is paused and resumed, but never fires a run
        # of its own during the suite.
        "GOVCTL_SCHEDULE_CRON": "0 3 1 1 *",
    }


def _clean_env() -> dict[str, str]:
    """The caller's environment without govctl's settings or emulator addresses: a stray
    GOVCTL_EMULATOR_HOST must never point a live run elsewhere (the working directory is a
    new one, so no govctl.toml is read either)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GOVCTL_", "STORAGE_EMULATOR_HOST"))
    }


@pytest.fixture(
    params=[
        "emulator",
        pytest.param("live", marks=pytest.mark.timeout(7200)),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    suffix = secrets.token_hex(4)
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env()
    if request.param == "live":
        project = os.environ.get(LIVE_ENV, "")
        if not project:
            pytest.skip(
                f"{LIVE_ENV} is not set: the live suite runs against a real project only when "
                f"asked (`make test-live PROJECT=…`); its emulator twin ran instead"
            )
        region = os.environ.get(LIVE_REGION_ENV) or "us-central1"
        env.update(_settings(project, region, suffix))
        yield Target("live", project, region, suffix, work, env)
        return
    yield from _emulated(work, env, suffix)


def _emulated(work: Path, env: dict[str, str], suffix: str) -> Iterator[Target]:
    """The loopback cloud, its tasks running the installed ingestion for this run's image."""
    from govctl.emulator.images import ingestion_command
    from govctl.emulator.server import Emulator
    from ingestion.demo import build

    feed = build(work)
    image_map = {f"*/govctl-live-{suffix}/ingestion*": ingestion_command()}
    with Emulator(state_dir=work / "emulator", image_map=image_map) as emu:
        env.update(emu.env())
        env.update(_settings(EMULATOR_PROJECT, EMULATOR_REGION, suffix))
        env["GOVCTL_JOB_FEED"] = feed.resolve().as_uri()
        env["GOVCTL_JOB_ARGS"] = "--allow-local"  # the sample repositories are file:// URLs
        yield Target("emulator", EMULATOR_PROJECT, EMULATOR_REGION, suffix, work, env)
