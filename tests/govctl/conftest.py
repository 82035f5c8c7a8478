"""Fixtures of the command tests: the loopback cloud with settings from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator.server import Emulator
from govctl.services import image as images
from tests.govctl.test_deploy import BUCKET, IMAGE, PROJECT, REGION
from tests.support.builds import build_account_for


@pytest.fixture
def cloud(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Emulator]:
    """The emulator, and settings from the environment only (no govctl.toml, no gcloud)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    for key, value in {
        "GOVCTL_PROJECT": PROJECT,
        "GOVCTL_REGION": REGION,
        "GOVCTL_BUCKET_NAME": BUCKET,
    }.items():
        monkeypatch.setenv(key, value)
    # A real image in the emulator's Artifact Registry (built by its Cloud Build), so that
    # `--image IMAGE` resolves; the tests deploy it by digest.
    built = images.build_image(
        PROJECT, REGION, allow_dirty=True, account=build_account_for(PROJECT)
    )
    assert built.uri == IMAGE
    yield emulator
