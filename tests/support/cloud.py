"""The loopback cloud as the command tests use it: the real ingestion image, settings from the
environment only, and fast polling."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import logs as logs_service
from govctl.services import watch


def enable_apis(project: str, apis: Iterable[str] | None = None) -> None:
    """Enable ``apis`` in ``project`` through Service Usage, as `gcloud services enable` does:
    a new project of the emulator, as of Google, has only the default APIs on. The default
    is every API govctl may use: what `govctl setup` enables with [job] secrets and [index]."""
    from govctl.gcp import services
    from govctl.services import apis as needed

    every = [a.name for a in needed.BASE] + [needed.SECRETS, needed.INDEX]
    services.enable(project, list(apis) if apis is not None else every)


@contextmanager
def job_cloud(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    project: str,
    region: str,
    bucket: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Emulator]:
    """An emulator whose ``*/govreposcrape/ingestion*`` images run ``python -m ingestion``,
    with ``bucket`` created, no govctl.toml or gcloud configuration of the developer's, and
    ``GOVCTL_*`` ``settings``; Cloud Run is watched every 0.2 s, Cloud Logging every 0.5 s."""
    with Emulator(state_dir=tmp_path / "state", image_map=default_image_map()) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        enable_apis(project)  # what `govctl setup` enables
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
