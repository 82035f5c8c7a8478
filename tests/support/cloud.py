"""The loopback cloud as the command tests use it: the real ingestion image, settings from the
environment only, and fast polling."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import logs as logs_service
from govctl.services import watch


@contextmanager
def job_cloud(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    project: str,
    region: str,
    bucket: str | None = None,
    settings: Mapping[str, str] | None = None,
    run_unmapped_images: bool = False,
) -> Iterator[Emulator]:
    """An emulator whose ``*/govreposcrape/ingestion*`` images run ``python -m ingestion``,
    with ``bucket`` created, no govctl.toml or gcloud configuration of the developer's, and
    ``GOVCTL_*`` ``settings``; Cloud Run is watched every 0.2 s, Cloud Logging every 0.5 s.
    ``run_unmapped_images``: a job of another image runs its container's own command."""
    with Emulator(
        state_dir=tmp_path / "state",
        image_map=default_image_map(),
        run_unmapped_images=run_unmapped_images,
    ) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        if bucket:
            clients.storage_client(project).create_bucket(bucket)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
        monkeypatch.setenv("GOVCTL_PROJECT", project)
        monkeypatch.setenv("GOVCTL_REGION", region)
        for key, value in (settings or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(watch, "POLL_S", 0.2)
        monkeypatch.setattr(watch, "LOG_POLL_S", 0.5)
        monkeypatch.setattr(logs_service, "FOLLOW_CHECK_S", 0.3)
        yield emu
