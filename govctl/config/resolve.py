"""Resolution: each key through the layers, highest first, into one :class:`Config`.

Precedence, highest first: command-line flags > ``GOVCTL_*`` environment variables >
the settings file > gcloud's active configuration > defaults (:mod:`govctl.config.sources`).

Every value is validated (``govctl.validate``) as it is resolved, before any API call: a bad
value, an unknown key (with a did-you-mean) or a wrong type is a one-line usage error (exit 2)
naming the key, the value, where it came from and the expected form. ``govctl config show``
prints each value with its source (:func:`display`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from govctl import validate
from govctl.config.keys import (
    ALERTS_EMAILS,
    ALERTS_STALE_AFTER,
    BUCKET_NAME,
    BUILD_SERVICE_ACCOUNT,
    CLOUD_EMULATOR,
    CLOUD_STORAGE_EMULATOR,
    EMULATOR_HOST,
    EMULATOR_PORT,
    EMULATOR_STATE_DIR,
    EMULATOR_STORAGE_PORT,
    INDEX_DATA_STORE,
    INDEX_LOCATION,
    JOB_ARGS,
    JOB_CPU,
    JOB_ENV,
    JOB_FEED,
    JOB_IMAGE,
    JOB_MAX_RETRIES,
    JOB_MEMORY,
    JOB_NAME,
    JOB_PARALLELISM,
    JOB_SECRETS,
    JOB_SERVICE_ACCOUNT,
    JOB_TASK_TIMEOUT,
    JOB_TASKS,
    KEYS,
    PROJECT,
    REGION,
    SCHEDULE_CRON,
    SCHEDULE_NAME,
    SCHEDULE_TIME_ZONE,
    SECTIONS,
    Key,
)
from govctl.config.settings import (
    AlertSettings,
    BuildSettings,
    CloudTarget,
    Config,
    EmulatorSettings,
    IndexSettings,
    JobSettings,
    ScheduleSettings,
    Setting,
)
from govctl.config.sources import find_file, gcloud_config, read_file, shown
from govctl.errors import UsageError

T = TypeVar("T")


def _flag_name(name: str) -> str:
    """Python names to key names: ``job_cpu`` -> ``job.cpu``."""
    for section in SECTIONS:
        if name.startswith(section + "_"):
            return f"{section}.{name[len(section) + 1 :]}"
    return name


# Lists of shell words (or TOML lists and tables): there a newline separates words as a space does.
_WORD_LISTS = frozenset({"job.args", "job.env", "job.secrets", "alerts.emails"})


def _unpadded(key: Key[Any], raw: Any, where: str) -> Any:
    # Python's `$` matches before a final newline, and a name with one names something else
    # (a second Cloud Run job): no value may carry whitespace around it.
    if isinstance(raw, str) and raw != raw.strip() and key.name not in _WORD_LISTS:
        raise UsageError(
            f"invalid {where} {validate.redacted(raw)!r}: expected no spaces or newlines "
            "before or after the value"
        )
    return raw


class _Resolver:
    """Resolves one key at a time through the layers, highest first; remembers each value,
    its source and any warning (in key order, so templates see the project and region)."""

    def __init__(self, env: Mapping[str, str], given: Mapping[str, Any]) -> None:
        self.env = env
        self.path = find_file(env)
        self.layers: list[tuple[str, Mapping[str, Any]]] = [
            ("flag", {k: v for k, v in given.items() if v is not None}),
            ("env", {k.name: env[k.env] for k in KEYS.values() if env.get(k.env)}),
            ("file", read_file(self.path) if self.path else {}),
        ]
        self._gcloud: dict[str, str] | None = None
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.warnings: list[str] = []

    def gcloud(self) -> dict[str, str]:
        if self._gcloud is None:
            self._gcloud = gcloud_config(self.env)
        return self._gcloud

    def _raw(self, key: Key[Any]) -> tuple[str, Any]:
        for source, layer in self.layers:
            if key.name in layer:
                return source, layer[key.name]
        if key.name in ("project", "region") and key.name in self.gcloud():
            return "gcloud", self.gcloud()[key.name]
        if key.template is not None:
            project = self.values.get("project")
            filled = None if project is None else key.template.format(
                project=project, region=self.values["region"])  # fmt: skip
            return "default", filled
        return "default", key.default

    def where(self, key: Key[Any], source: str) -> str:
        if source == "flag":
            return "--" + key.name.rpartition(".")[2].replace("_", "-")
        if source == "env":
            return key.env
        if source == "gcloud":
            return f"{key.label} (from gcloud config)"
        if source == "default":
            return key.label
        return f"{key.label} in {shown(self.path) if self.path else '?'}"

    def get(self, key: Key[T]) -> T | None:
        """The key's value (parsed and checked), or None when it has none."""
        if key.name not in self.values:
            source, raw = self._raw(key)
            value = None
            if raw is not None:
                where = self.where(key, source)
                # A default is already a typed value (a copy: nothing shares a dict), except
                # one made from a template, which is checked like any input.
                typed = source == "default" and key.template is None
                value = copy.copy(raw) if typed else key.parse(_unpadded(key, raw, where), where)
                value = self._anchored(value, source)
                said = key.warn(value, where) if key.warn is not None else None
                self.warnings += [said] if said else []
            self.values[key.name], self.sources[key.name] = value, source
        return cast("T | None", self.values[key.name])

    def _anchored(self, value: T, source: str) -> T:
        """A relative path written in the settings file means one beside that file, wherever
        govctl runs from (a path from a flag or variable stays relative to the current
        directory, as a shell's would)."""
        if source == "file" and self.path is not None and isinstance(value, Path):
            return cast("T", self.path.parent / value)
        return value

    def need(self, key: Key[T]) -> T:
        """A key that always has a value (it has a default)."""
        value = self.get(key)
        if value is None:  # only a key without a default can be absent
            raise AssertionError(f"{key.name} has no default")
        return value


def load(
    env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None, **named: Any
) -> Config:
    """The resolved settings.

    ``flags`` maps key names (``"job.cpu"``) to command-line values, ``named`` takes the same
    as Python names (``job_cpu=4``); ``None`` means the flag was not given.
    """
    env = os.environ if env is None else env
    given = {**(flags or {}), **{_flag_name(k): v for k, v in named.items()}}
    for name in given:
        if name not in KEYS:
            raise TypeError(f"unknown setting {name!r}")
    r = _Resolver(env, given)
    project, region = r.get(PROJECT), r.need(REGION)
    job = JobSettings(
        name=r.need(JOB_NAME),
        image_or_none=r.get(JOB_IMAGE),
        service_account_or_none=r.get(JOB_SERVICE_ACCOUNT),
        cpu=r.need(JOB_CPU),
        memory_mib=r.need(JOB_MEMORY),
        task_timeout=r.need(JOB_TASK_TIMEOUT),
        max_retries=r.need(JOB_MAX_RETRIES),
        tasks=r.need(JOB_TASKS),
        parallelism=r.need(JOB_PARALLELISM),
        feed=r.need(JOB_FEED),
        args=r.need(JOB_ARGS),
        env=r.need(JOB_ENV),
        secrets=r.need(JOB_SECRETS),
    )
    cfg = Config(
        project=project,
        region=region,
        job=job,
        build=BuildSettings(r.get(BUILD_SERVICE_ACCOUNT)),
        bucket=r.need(BUCKET_NAME),
        schedule=ScheduleSettings(
            r.need(SCHEDULE_NAME), r.need(SCHEDULE_CRON), r.need(SCHEDULE_TIME_ZONE)
        ),
        index=IndexSettings(r.need(INDEX_DATA_STORE), r.need(INDEX_LOCATION)),
        alerts=AlertSettings(r.need(ALERTS_EMAILS), r.get(ALERTS_STALE_AFTER)),
        cloud=CloudTarget(r.get(CLOUD_EMULATOR), r.get(CLOUD_STORAGE_EMULATOR)),
        emulator=EmulatorSettings(
            r.get(EMULATOR_STATE_DIR), r.need(EMULATOR_HOST), r.need(EMULATOR_PORT),
            r.need(EMULATOR_STORAGE_PORT),
        ),
        source=r.path,
        settings={k: Setting(r.values[k], r.sources[k]) for k in KEYS},
        warnings=tuple(r.warnings),
    )  # fmt: skip
    _check_combinations(cfg, r)
    return cfg


def cloud_target(env: Mapping[str, str] | None = None) -> CloudTarget:
    """Where the Google APIs are, resolved as :func:`load` does (environment, govctl.toml),
    without the other settings: for code that runs without a command's (tests, scripts)."""
    r = _Resolver(os.environ if env is None else env, {})
    return CloudTarget(r.get(CLOUD_EMULATOR), r.get(CLOUD_STORAGE_EMULATOR))


def _check_combinations(cfg: Config, r: _Resolver) -> None:
    job = cfg.job
    validate.cpu_memory(job.cpu, job.memory_mib, r.where(JOB_MEMORY, r.sources[JOB_MEMORY.name]))
    both = sorted(set(job.env) & set(job.secrets))
    if both:
        raise UsageError(
            f"invalid {r.where(JOB_SECRETS, r.sources[JOB_SECRETS.name])}: "
            f"{both[0]} is also in [job] env; expected each variable in one of them",
            fix=f"remove {both[0]} from [job] env",
        )
    if job.parallelism > job.tasks:
        raise UsageError(
            f"invalid {r.where(JOB_PARALLELISM, r.sources[JOB_PARALLELISM.name])} "
            f"{job.parallelism}: expected at most [job] tasks ({job.tasks}), or 0 for as "
            "many as possible"
        )


def display(name: str, value: object) -> object:
    """A resolved value as the operator writes it (``4Gi``, ``6h``)."""
    if name == "job.memory" and isinstance(value, int):
        return validate.format_memory(value)
    if isinstance(value, timedelta):
        return validate.format_duration(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
