"""The loopback cloud as the command tests use it: the real ingestion image, settings from the
environment only, and fast polling."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def service_account(project: str, account_id: str) -> str:
    """Create the service account ``account_id`` in ``project`` (a policy may name only an
    account that exists, as on Google); its member string."""
    made = clients.iam().create_service_account(
        request={"name": f"projects/{project}", "account_id": account_id}
    )
    return f"serviceAccount:{made.email}"


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


class Completions:
    """Counts the Cloud Run executions whose completion the emulator's listeners have handled.

    The emulator tells Cloud Monitoring of a completed execution on the execution's own thread,
    after the execution already reads as completed. ``Cloud.publish`` calls listeners in the
    order they subscribed, so this one (subscribed after the emulator started) runs after
    Monitoring's: once it has seen N completions, every e-mail they cause is in the mailbox,
    and nothing more will come of them. Create it before the executions run.
    """

    def __init__(self, emu: Emulator) -> None:
        self._seen = 0
        self._cond = threading.Condition()
        emu.cloud.subscribe("run.execution_completed", self._completed)

    def _completed(self, event: dict[str, Any]) -> None:
        with self._cond:
            self._seen += 1
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._seen >= count, timeout):
                raise AssertionError(f"{self._seen} of {count} completions handled in {timeout} s")


def check_absence(emu: Emulator) -> None:
    """Run Monitoring's absence check now, at the emulator clock's time (its ticker runs the
    same check every 0.5 s): what it would send for this time is then in the mailbox."""
    emu.cloud.service("monitoring").check_absence()
