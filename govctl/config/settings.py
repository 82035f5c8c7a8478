"""The resolved settings, typed: :class:`Config` and a class for each of its sections.

Every setting is a typed attribute of :class:`Config`. One that cannot be known is ``None``:
the project when none is set anywhere, and so the image and service-account defaults that
are made from it; reading those (``cfg.job.image``) raises the usage error that says how to
set a project. Where the Google APIs are (Google, or the loopback cloud of ``govctl
emulator``: ``GOVCTL_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``) is a setting too,
``cfg.cloud``, which the client factory (``govctl.gcp.clients``) is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from govctl import validate
from govctl.config.keys import (
    BUILD_SERVICE_ACCOUNT,
    JOB_IMAGE,
    JOB_SERVICE_ACCOUNT,
    Key,
    default_state_dir,
)
from govctl.errors import UsageError

NEEDS_PROJECT_FIX = (
    'pass --project P, set GOVCTL_PROJECT, write project = "P" in govctl.toml '
    "(govctl init --project P) or run `gcloud config set project P`"
)


def _needs_project(value: str | None, key: Key[Any]) -> str:
    if value is None:
        raise UsageError(f"{key.label} needs a project: none is set", fix=NEEDS_PROJECT_FIX)
    return value


@dataclass(frozen=True)
class JobSettings:
    name: str
    # None: the default is made from the project, and no project is set (read ``image``).
    image_or_none: str | None
    service_account_or_none: str | None
    cpu: int
    memory_mib: int
    task_timeout: timedelta
    max_retries: int
    tasks: int
    parallelism: int
    feed: str
    args: tuple[str, ...]
    env: dict[str, str]
    secrets: dict[str, str]  # NAME -> secret-id[:version]

    @property
    def image(self) -> str:
        """The image path; a usage error when it cannot be known (no project)."""
        return _needs_project(self.image_or_none, JOB_IMAGE)

    @property
    def service_account(self) -> str:
        """The job's service account; a usage error when it cannot be known (no project)."""
        return _needs_project(self.service_account_or_none, JOB_SERVICE_ACCOUNT)

    @property
    def memory(self) -> str:
        return validate.format_memory(self.memory_mib)


@dataclass(frozen=True)
class BuildSettings:
    """How `deploy --build cloud` builds the image."""

    # None: the default is made from the project, and no project is set.
    service_account_or_none: str | None

    @property
    def service_account(self) -> str:
        """The account builds run as; a usage error when it cannot be known (no project)."""
        return _needs_project(self.service_account_or_none, BUILD_SERVICE_ACCOUNT)


@dataclass(frozen=True)
class ScheduleSettings:
    name: str
    cron: str
    time_zone: str


@dataclass(frozen=True)
class AlertSettings:
    emails: tuple[str, ...]  # empty: keep the addresses already set
    stale_after: timedelta | None  # None: the current window, or two schedule intervals


@dataclass(frozen=True)
class IndexSettings:
    data_store: str
    location: str  # global, us or eu


@dataclass(frozen=True)
class CloudTarget:
    """Where the Google APIs are: Google itself (both None), or the loopback cloud."""

    emulator: str | None = None  # HOST:PORT of govctl emulator's gRPC services
    storage_emulator: str | None = None  # http://HOST:PORT of its fake-gcs-server

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None


@dataclass(frozen=True)
class EmulatorSettings:
    """How `govctl emulator start` runs the loopback cloud (not where commands talk to)."""

    state_dir: Path | None
    host: str
    port: int
    storage_port: int


@dataclass(frozen=True)
class Setting:
    """A resolved value as `config show` prints it, and where it came from."""

    value: object
    source: str  # flag, env, file, gcloud or default


@dataclass(frozen=True)
class Config:
    project: str | None
    region: str
    job: JobSettings
    build: BuildSettings
    bucket: str
    schedule: ScheduleSettings
    index: IndexSettings
    cloud: CloudTarget
    emulator: EmulatorSettings
    alerts: AlertSettings = AlertSettings((), None)
    source: Path | None = None  # the file read, if any
    settings: Mapping[str, Setting] = field(default_factory=dict)  # key name -> value and source
    warnings: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        return self.emulator.state_dir or default_state_dir()

    def require_project(self) -> str:
        if self.project is None:
            raise UsageError("no project set", fix=NEEDS_PROJECT_FIX)
        return self.project

    @property
    def parent(self) -> str:
        return f"projects/{self.require_project()}/locations/{self.region}"

    @property
    def job_path(self) -> str:
        return f"{self.parent}/jobs/{self.job.name}"

    @property
    def schedule_path(self) -> str:
        return f"{self.parent}/jobs/{self.schedule.name}"

    @property
    def run_uri(self) -> str:
        """What Cloud Scheduler POSTs to (the Run Admin API v2 ``:run`` method)."""
        return f"https://run.googleapis.com/v2/{self.job_path}:run"
