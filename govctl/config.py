"""govctl's settings, resolved in one place.

Precedence, highest first: command-line flags > ``GOVCTL_*`` environment variables >
``govctl.toml`` (or the file ``$GOVCTL_CONFIG`` names) > gcloud's active configuration
(``core/project``, ``run/region``, read from its files; gcloud is never run) > defaults.
The defaults are the old runbook's, so an existing deployment is adopted, not duplicated.

Every value is validated (``govctl.validate``) as it is resolved, before any API call: a bad
value, an unknown key (with a did-you-mean) or a wrong type is a one-line usage error (exit 2)
naming the key, the value, where it came from and the expected form. ``govctl config show``
prints each value with its source; ``govctl init`` writes a commented file with every key.
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from govctl import validate
from govctl.errors import UsageError

DEFAULT_REGION = "us-central1"
# Fixed defaults so `eval "$(govctl emulator env)"` keeps working across restarts; 0 = a
# free port. 4443 is fake-gcs-server's own default; 8086 is free on a typical laptop.
DEFAULT_EMULATOR_HOST = "127.0.0.1"
DEFAULT_EMULATOR_PORT = 8086
DEFAULT_STORAGE_PORT = 4443
DEFAULT_FEED = (
    "https://raw.githubusercontent.com/uk-x-gov-software-community/"
    "xgov-opensource-repo-scraper/main/repos.json"
)

CONFIG_ENV = "GOVCTL_CONFIG"
CONFIG_FILE = "govctl.toml"


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("govctl")) / "emulator"


@dataclass(frozen=True)
class Key:
    """One setting: its TOML place, environment variable, parser, default and meaning."""

    name: str  # "project", "job.cpu"
    env: str
    parse: Callable[[Any, str], Any]
    default: Any  # a value, or a str.format template over project/region
    help: str

    @property
    def label(self) -> str:
        """How the operator writes it in govctl.toml: ``project``, ``[job] cpu``."""
        section, _, key = self.name.rpartition(".")
        return f"[{section}] {key}" if section else key


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"invalid {where} {value!r}: expected a non-empty string")
    return value


def _port(value: Any, where: str) -> int:
    return validate.integer(value, where, 0, 65535)


def _path(value: Any, where: str) -> Path:
    return Path(_str(str(value) if isinstance(value, Path) else value, where)).expanduser()


def _count(low: int, high: int) -> Callable[[Any, str], int]:
    return lambda value, where: validate.integer(value, where, low, high)


# Discovery Engine data store ids (RFC-1034-like, as the API documents) and its locations.
_DATA_STORE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
INDEX_LOCATIONS = ("global", "us", "eu")


def _data_store(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _DATA_STORE_ID.fullmatch(value):
        raise UsageError(
            f"invalid {where} {value!r}: expected a data store id of lowercase letters, digits, "
            "'-' and '_' (at most 63, starting with a letter or digit)"
        )
    return value


def _index_location(value: Any, where: str) -> str:
    if value not in INDEX_LOCATIONS:
        raise UsageError(f"invalid {where} {value!r}: expected one of {', '.join(INDEX_LOCATIONS)}")
    return str(value)


KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key("project", "GOVCTL_PROJECT", validate.project, None,
            "Google Cloud project id (default: gcloud's core/project)"),
        Key("region", "GOVCTL_REGION", validate.region, DEFAULT_REGION,
            "Cloud Run region of the job, scheduler, bucket and images"),
        Key("job.name", "GOVCTL_JOB_NAME", validate.job_name, "govreposcrape-ingestion",
            "Cloud Run job name"),
        Key("job.image", "GOVCTL_JOB_IMAGE", validate.image,
            "{region}-docker.pkg.dev/{project}/govreposcrape/ingestion",
            "Artifact Registry image path; deploy adds the tag and pins the digest"),
        Key("job.service_account", "GOVCTL_JOB_SERVICE_ACCOUNT", validate.service_account,
            "govreposcrape-sa@{project}.iam.gserviceaccount.com",
            "identity of the job's tasks and of the scheduler's calls"),
        Key("job.cpu", "GOVCTL_JOB_CPU", validate.cpu, 2, "vCPUs per task: 1, 2, 4, 6 or 8"),
        Key("job.memory", "GOVCTL_JOB_MEMORY", validate.memory_mib, "4Gi",
            "memory per task (Mi or Gi; 1 vCPU up to 4Gi, 2 up to 8Gi, 4: 2-16Gi, 6: 4-24Gi, "
            "8: 4-32Gi)"),
        Key("job.task_timeout", "GOVCTL_JOB_TASK_TIMEOUT", validate.duration, "6h",
            "time limit of one task attempt (up to 168h)"),
        Key("job.max_retries", "GOVCTL_JOB_MAX_RETRIES", _count(0, validate.MAX_RETRIES), 0,
            "retries of a failed task, 0-10"),
        Key("job.tasks", "GOVCTL_JOB_TASKS", _count(1, validate.MAX_TASKS), 1,
            "tasks per execution; each ingests its share of the feed"),
        Key("job.parallelism", "GOVCTL_JOB_PARALLELISM", _count(0, validate.MAX_TASKS), 0,
            "tasks running at once; 0 = as many as possible"),
        Key("job.feed", "GOVCTL_JOB_FEED", validate.url, DEFAULT_FEED,
            "the repository feed (becomes REPOS_FEED_URL)"),
        Key("job.args", "GOVCTL_JOB_ARGS", validate.string_list, (),
            "extra arguments for `python -m ingestion`"),
        Key("job.env", "GOVCTL_JOB_ENV", validate.env_map, {},
            "extra environment variables for the job"),
        Key("job.secrets", "GOVCTL_JOB_SECRETS", validate.secret_map, {},
            'environment variables read from Secret Manager: NAME = "secret-id[:version]" '
            "(`govctl secrets set NAME` stores the value)"),
        Key("bucket.name", "GOVCTL_BUCKET_NAME", validate.bucket_name, "govreposcrape-summaries",
            "Cloud Storage bucket of the digests (becomes GCS_BUCKET_NAME)"),
        Key("schedule.name", "GOVCTL_SCHEDULE_NAME", validate.scheduler_name,
            "govreposcrape-daily-ingest", "Cloud Scheduler job name"),
        Key("schedule.cron", "GOVCTL_SCHEDULE_CRON", validate.cron, "0 2 * * *",
            "when the job runs (five-field unix cron)"),
        Key("schedule.time_zone", "GOVCTL_SCHEDULE_TIME_ZONE", validate.time_zone, "Etc/UTC",
            "time zone of the cron (IANA name)"),
        Key("index.data_store", "GOVCTL_INDEX_DATA_STORE", _data_store, "govreposcrape-search",
            "Vertex AI Search data store that indexes the bucket's digests"),
        Key("index.location", "GOVCTL_INDEX_LOCATION", _index_location, "global",
            "location of the data store: global, us or eu"),
        Key("emulator.state_dir", "GOVCTL_EMULATOR_STATE_DIR", _path, None,
            "where `govctl emulator` keeps its state (default: the user data dir)"),
        Key("emulator.host", "GOVCTL_EMULATOR_BIND", _str, DEFAULT_EMULATOR_HOST,
            "address `govctl emulator` listens on"),
        Key("emulator.port", "GOVCTL_EMULATOR_PORT", _port, DEFAULT_EMULATOR_PORT,
            "gRPC port of `govctl emulator`; 0 = a free port"),
        Key("emulator.storage_port", "GOVCTL_EMULATOR_STORAGE_PORT", _port, DEFAULT_STORAGE_PORT,
            "fake-gcs-server port of `govctl emulator`; 0 = a free port"),
    ]
}  # fmt: skip
SECTIONS = ("job", "bucket", "schedule", "index", "emulator")


@dataclass(frozen=True)
class JobSettings:
    name: str
    image: str
    service_account: str
    cpu: int
    memory_mib: int
    task_timeout: timedelta
    max_retries: int
    tasks: int
    parallelism: int
    feed: str
    args: tuple[str, ...]
    env: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)  # NAME -> secret-id[:version]

    @property
    def memory(self) -> str:
        return validate.format_memory(self.memory_mib)


@dataclass(frozen=True)
class ScheduleSettings:
    name: str
    cron: str
    time_zone: str


@dataclass(frozen=True)
class Config:
    project: str | None
    region: str
    job: JobSettings
    bucket: str
    schedule: ScheduleSettings
    emulator_state_dir: Path | None
    emulator_host: str
    emulator_port: int
    emulator_storage_port: int
    source: Path | None = None  # the file read, if any
    values: dict[str, Any] = field(default_factory=dict)  # key name -> resolved value
    sources: dict[str, str] = field(default_factory=dict)  # key name -> flag/env/file/…
    warnings: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        return self.emulator_state_dir or default_state_dir()

    def require_project(self) -> str:
        if self.project is None:
            raise UsageError(
                "no project set",
                fix='pass --project P, set GOVCTL_PROJECT, write project = "P" in govctl.toml '
                "(govctl init --project P) or run `gcloud config set project P`",
            )
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


# ---------------------------------------------------------------------------------------


def _config_path(env: Mapping[str, str]) -> Path | None:
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise UsageError(
                f"{CONFIG_ENV}={path} does not exist", fix="unset it or create the file"
            )
        return path
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def _unknown(path: Path, label: str, known: list[str]) -> UsageError:
    return UsageError(f"{path}: unknown key {label}", fix=validate.suggest(label, known))


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    labels = [k.label for k in KEYS.values()]
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                raise UsageError(f"{path}: [{name}] must be a table")
            for sub, subvalue in value.items():
                if f"{name}.{sub}" not in KEYS:
                    raise _unknown(path, f"[{name}] {sub}", labels)
                values[f"{name}.{sub}"] = subvalue
        elif name in KEYS:
            values[name] = value
        else:
            raise _unknown(path, repr(name) if not isinstance(value, dict) else f"[{name}]",
                           labels)  # fmt: skip
    return values


def _gcloud(env: Mapping[str, str]) -> dict[str, str]:
    """``core/project`` and ``run/region`` of gcloud's active configuration, without gcloud."""
    found: dict[str, str] = {}
    root = Path(env.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud").expanduser()
    name = env.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not name:
        try:
            name = (root / "active_config").read_text(encoding="utf-8").strip() or "default"
        except OSError:
            name = "default"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / "configurations" / f"config_{name}", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return found  # a broken gcloud file is gcloud's business; fall through to defaults
    for key, (section, option, var) in {
        "project": ("core", "project", "CLOUDSDK_CORE_PROJECT"),
        "region": ("run", "region", "CLOUDSDK_RUN_REGION"),
    }.items():
        value = env.get(var) or parser.get(section, option, fallback=None)
        if value:
            found[key] = value.strip()
    return found


def _flag_name(name: str) -> str:
    """Python names to key names: ``job_cpu`` -> ``job.cpu``."""
    for section in SECTIONS:
        if name.startswith(section + "_"):
            return f"{section}.{name[len(section) + 1 :]}"
    return name


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
    path = _config_path(env)
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", {k: v for k, v in given.items() if v is not None}),
        ("env", {k.name: env[k.env] for k in KEYS.values() if env.get(k.env)}),
        ("file", _read_file(path) if path else {}),
    ]
    gcloud: dict[str, str] | None = None
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    warnings: list[str] = []
    for key in KEYS.values():
        for source, layer in layers:
            if key.name in layer:
                raw, where = layer[key.name], _where(key, source, path)
                break
        else:
            if key.name in ("project", "region"):
                gcloud = _gcloud(env) if gcloud is None else gcloud
            if gcloud and key.name in gcloud:
                source, raw, where = "gcloud", gcloud[key.name], f"{key.label} (from gcloud config)"
            else:
                source, raw, where = "default", key.default, key.label
        if isinstance(raw, str) and "{" in raw and source == "default":
            project = values.get("project")
            raw = None if project is None else raw.format(project=project, region=values["region"])
        if raw is None:
            values[key.name], sources[key.name] = None, source
            continue
        values[key.name], sources[key.name] = _parse(key, raw, where, warnings), source
    _check_combinations(values, sources, path)
    return _build(values, sources, path, tuple(warnings))


# Lists of shell words (or TOML lists and tables): there a newline separates words as a space does.
_WORD_LISTS = frozenset({"job.args", "job.env", "job.secrets"})


def _parse(key: Key, raw: Any, where: str, warnings: list[str]) -> Any:
    # Python's `$` matches before a final newline, and a name with one names something else
    # (a second Cloud Run job): no value may carry whitespace around it.
    if isinstance(raw, str) and raw != raw.strip() and key.name not in _WORD_LISTS:
        raise UsageError(
            f"invalid {where} {validate.redacted(raw)!r}: expected no spaces or newlines "
            "before or after the value"
        )
    if key.name == "job.task_timeout":
        value, warning = validate.task_timeout(raw, where)
        warnings += [warning] if warning else []
        return value
    return key.parse(raw, where)


def _where(key: Key, source: str, path: Path | None) -> str:
    if source == "flag":
        return "--" + key.name.rpartition(".")[2].replace("_", "-")
    if source == "env":
        return key.env
    return f"{key.label} in {path}"


def _check_combinations(values: dict[str, Any], sources: dict[str, str], path: Path | None) -> None:
    validate.cpu_memory(values["job.cpu"], values["job.memory"],
                        _where(KEYS["job.memory"], sources["job.memory"], path))  # fmt: skip
    both = sorted(set(values["job.env"]) & set(values["job.secrets"]))
    if both:
        raise UsageError(
            f"invalid {_where(KEYS['job.secrets'], sources['job.secrets'], path)}: "
            f"{both[0]} is also in [job] env; expected each variable in one of them",
            fix=f"remove {both[0]} from [job] env",
        )
    if values["job.parallelism"] > values["job.tasks"]:
        raise UsageError(
            f"invalid {_where(KEYS['job.parallelism'], sources['job.parallelism'], path)} "
            f"{values['job.parallelism']}: expected at most [job] tasks "
            f"({values['job.tasks']}), or 0 for as many as possible"
        )


def _build(
    values: dict[str, Any], sources: dict[str, str], path: Path | None, warnings: tuple[str, ...]
) -> Config:
    placeholder = "(needs a project)"
    job = JobSettings(
        name=values["job.name"],
        image=values["job.image"] or placeholder,
        service_account=values["job.service_account"] or placeholder,
        cpu=values["job.cpu"],
        memory_mib=values["job.memory"],
        task_timeout=values["job.task_timeout"],
        max_retries=values["job.max_retries"],
        tasks=values["job.tasks"],
        parallelism=values["job.parallelism"],
        feed=values["job.feed"],
        args=values["job.args"],
        env=values["job.env"],
        secrets=values["job.secrets"],
    )
    return Config(
        project=values["project"],
        region=values["region"],
        job=job,
        bucket=values["bucket.name"],
        schedule=ScheduleSettings(
            values["schedule.name"], values["schedule.cron"], values["schedule.time_zone"]
        ),
        emulator_state_dir=values["emulator.state_dir"],
        emulator_host=values["emulator.host"],
        emulator_port=values["emulator.port"],
        emulator_storage_port=values["emulator.storage_port"],
        source=path,
        values=values,
        sources=sources,
        warnings=warnings,
    )


def display(name: str, value: Any) -> Any:
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
