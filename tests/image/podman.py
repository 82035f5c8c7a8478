"""Build and run the job's image (ingestion/Dockerfile) with podman (RECIPES.md: no Docker, no
registry)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_SCRIPT = ROOT / "scripts" / "podman-base.sh"
DOCKERFILE = ROOT / "ingestion" / "Dockerfile"
BASE_IMAGE = "localhost/pybase:bookworm"
IMAGE = "localhost/govctl-ingestion:test"


def podman_available() -> bool:
    return shutil.which("podman") is not None


def podman_env() -> dict[str, str]:
    """The environment for podman commands: CONTAINERS_CONF from scripts/podman-base.sh.

    The script also builds the Debian base image once (about a minute) and reuses it after.
    """
    out = subprocess.run(
        ["bash", str(BASE_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{BASE_SCRIPT} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return {**os.environ, "CONTAINERS_CONF": out.stdout.strip().splitlines()[-1]}


def podman(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def build_image(env: dict[str, str], tag: str = IMAGE) -> str:
    """Build ingestion/Dockerfile (context: the repository root) on the debootstrap base;
    layers are cached."""
    out = podman(
        env,
        "build", "-f", str(DOCKERFILE), "--build-arg", f"BASE={BASE_IMAGE}", "-t", tag, str(ROOT),
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"podman build failed ({out.returncode}):\n{out.stderr[-6000:]}")
    return tag
