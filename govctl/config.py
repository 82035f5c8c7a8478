"""govctl's settings, resolved in one place.

Precedence, highest first: command-line flags > ``GOVCTL_*`` environment variables >
the settings file (the file ``$GOVCTL_CONFIG`` names, else the nearest ``govctl.toml`` in the
current directory or above it: :func:`find_file`) > gcloud's active configuration
(``core/project``, ``run/region``, read from its files; gcloud is never run) > defaults.
The defaults are the old runbook's, so an existing deployment is adopted, not duplicated.

Every value is validated (``govctl.validate``) as it is resolved, before any API call: a bad
value, an unknown key (with a did-you-mean) or a wrong type is a one-line usage error (exit 2)
naming the key, the value, where it came from and the expected form. ``govctl config show``
prints each value with its source; ``govctl init`` writes a commented file with every key.

Every setting is a typed attribute of :class:`Config`. One that cannot be known is ``None``:
the project when none is set anywhere, and so the image and service-account defaults that
are made from it; reading those (``cfg.job.image``) raises the usage error that says how to
set a project. Where the Google APIs are (Google, or the loopback cloud of ``govctl
emulator``: ``GOVCTL_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``) is a setting too,
``cfg.cloud``, which the client factory (``govctl.gcp.clients``) is given.
"""

from __future__ import annotations

import configparser
import copy
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

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
CEILING_ENV = "GOVCTL_CEILING_DIRECTORIES"


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("govctl")) / "emulator"


T = TypeVar("T")


@dataclass(frozen=True)
class Key(Generic[T]):
    """One setting: its TOML place, environment variable, parser, default and meaning."""

    name: str  # "project", "job.cpu"
    env: str
    parse: Callable[[Any, str], T]
    default: T | None  # None: no default (or ``template`` makes it)
    help: str
    template: str | None = None  # a default made from the project and region
    # Says when a valid value still deserves a word (e.g. a very long task timeout).
    warn: Callable[[T, str], str | None] | None = None

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


# A gRPC target as `govctl emulator env` prints it: HOST:PORT (IPv6 in brackets), no scheme.
_GRPC_TARGET = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")
# fake-gcs-server's address as the storage library reads STORAGE_EMULATOR_HOST.
_STORAGE_URL = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?/?")


def _grpc_target(value: Any, where: str) -> str:
    m = _GRPC_TARGET.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or not 0 < int(m.group(2)) <= 65535:
        raise UsageError(
            f"invalid {where} {value!r}: expected HOST:PORT of `govctl emulator` such as "
            "127.0.0.1:8086",
            fix='eval "$(govctl emulator env)" sets it',
        )
    return m.group(0)


def _storage_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _STORAGE_URL.fullmatch(value.strip()):
        raise UsageError(
            f"invalid {where} {value!r}: expected the URL of fake-gcs-server such as "
            "http://127.0.0.1:4443",
            fix='eval "$(govctl emulator env)" sets it',
        )
    return value.strip().rstrip("/")


# fmt: off
PROJECT = Key("project", "GOVCTL_PROJECT", validate.project, None,
              "Google Cloud project id (default: gcloud's core/project)")
REGION = Key("region", "GOVCTL_REGION", validate.region, DEFAULT_REGION,
             "Cloud Run region of the job, scheduler, bucket and images")
JOB_NAME = Key("job.name", "GOVCTL_JOB_NAME", validate.job_name, "govreposcrape-ingestion",
               "Cloud Run job name")
JOB_IMAGE = Key("job.image", "GOVCTL_JOB_IMAGE", validate.image, None,
                "Artifact Registry image path; deploy adds the tag and pins the digest",
                template="{region}-docker.pkg.dev/{project}/govreposcrape/ingestion")
JOB_SERVICE_ACCOUNT = Key("job.service_account", "GOVCTL_JOB_SERVICE_ACCOUNT",
                          validate.service_account, None,
                          "identity of the job's tasks and of the scheduler's calls",
                          template="govreposcrape-sa@{project}.iam.gserviceaccount.com")
JOB_CPU = Key("job.cpu", "GOVCTL_JOB_CPU", validate.cpu, 2, "vCPUs per task: 1, 2, 4, 6 or 8")
JOB_MEMORY = Key("job.memory", "GOVCTL_JOB_MEMORY", validate.memory_mib, 4 * validate.GIB,
                 "memory per task (Mi or Gi; 1 vCPU 128Mi-4Gi, 2: 128Mi-8Gi, 4: 2-16Gi, "
                 "6: 4-24Gi, 8: 4-32Gi)")
JOB_TASK_TIMEOUT = Key("job.task_timeout", "GOVCTL_JOB_TASK_TIMEOUT", validate.task_timeout,
                       timedelta(hours=6), "time limit of one task attempt (up to 168h)",
                       warn=validate.task_timeout_warning)
JOB_MAX_RETRIES = Key("job.max_retries", "GOVCTL_JOB_MAX_RETRIES",
                      _count(0, validate.MAX_RETRIES), 0, "retries of a failed task, 0-10")
JOB_TASKS = Key("job.tasks", "GOVCTL_JOB_TASKS", _count(1, validate.MAX_TASKS), 1,
                "tasks per execution; each ingests its share of the feed")
JOB_PARALLELISM = Key("job.parallelism", "GOVCTL_JOB_PARALLELISM",
                      _count(0, validate.MAX_TASKS), 0,
                      "tasks running at once; 0 = as many as possible")
JOB_FEED = Key("job.feed", "GOVCTL_JOB_FEED", validate.url, DEFAULT_FEED,
               "the repository feed (becomes REPOS_FEED_URL)")
JOB_ARGS: Key[tuple[str, ...]] = Key(
    "job.args", "GOVCTL_JOB_ARGS", validate.string_list, (),
    "extra arguments for `python -m ingestion`")
JOB_ENV: Key[dict[str, str]] = Key(
    "job.env", "GOVCTL_JOB_ENV", validate.env_map, {}, "extra environment variables for the job")
JOB_SECRETS: Key[dict[str, str]] = Key(
    "job.secrets", "GOVCTL_JOB_SECRETS", validate.secret_map, {},
    'environment variables read from Secret Manager: NAME = "secret-id[:version]" '
    "(`govctl secrets set NAME` stores the value)")
BUILD_SERVICE_ACCOUNT = Key("build.service_account", "GOVCTL_BUILD_SERVICE_ACCOUNT",
                            validate.service_account, None,
                            "identity Cloud Build runs `deploy --build cloud` as (setup makes "
                            "it and grants it what a build needs)",
                            template="govreposcrape-build@{project}.iam.gserviceaccount.com")
BUCKET_NAME = Key("bucket.name", "GOVCTL_BUCKET_NAME", validate.bucket_name,
                  "govreposcrape-summaries",
                  "Cloud Storage bucket of the digests (becomes GCS_BUCKET_NAME)")
SCHEDULE_NAME = Key("schedule.name", "GOVCTL_SCHEDULE_NAME", validate.scheduler_name,
                    "govreposcrape-daily-ingest", "Cloud Scheduler job name")
SCHEDULE_CRON = Key("schedule.cron", "GOVCTL_SCHEDULE_CRON", validate.cron, "0 2 * * *",
                    "when the job runs (five-field unix cron)")
SCHEDULE_TIME_ZONE = Key("schedule.time_zone", "GOVCTL_SCHEDULE_TIME_ZONE", validate.time_zone,
                         "Etc/UTC", "time zone of the cron (IANA name)")
INDEX_DATA_STORE = Key("index.data_store", "GOVCTL_INDEX_DATA_STORE", _data_store,
                       "govreposcrape-search",
                       "Vertex AI Search data store that indexes the bucket's digests")
INDEX_LOCATION = Key("index.location", "GOVCTL_INDEX_LOCATION", _index_location, "global",
                     "location of the data store: global, us or eu")
CLOUD_EMULATOR = Key("cloud.emulator", "GOVCTL_EMULATOR_HOST", _grpc_target, None,
                     "talk to `govctl emulator` at HOST:PORT instead of Google Cloud "
                     "(`eval \"$(govctl emulator env)\"` sets it)")
CLOUD_STORAGE_EMULATOR = Key("cloud.storage_emulator", "STORAGE_EMULATOR_HOST", _storage_url,
                             None, "Cloud Storage at this URL (the emulator's fake-gcs-server) "
                             "instead of Google Cloud")
EMULATOR_STATE_DIR = Key("emulator.state_dir", "GOVCTL_EMULATOR_STATE_DIR", _path, None,
                         "where `govctl emulator` keeps its state (default: the user data dir)")
EMULATOR_HOST = Key("emulator.host", "GOVCTL_EMULATOR_BIND", _str, DEFAULT_EMULATOR_HOST,
                    "address `govctl emulator` listens on")
EMULATOR_PORT = Key("emulator.port", "GOVCTL_EMULATOR_PORT", _port, DEFAULT_EMULATOR_PORT,
                    "gRPC port of `govctl emulator`; 0 = a free port")
EMULATOR_STORAGE_PORT = Key("emulator.storage_port", "GOVCTL_EMULATOR_STORAGE_PORT", _port,
                            DEFAULT_STORAGE_PORT,
                            "fake-gcs-server port of `govctl emulator`; 0 = a free port")
# fmt: on

KEYS: dict[str, Key[Any]] = {
    k.name: k
    for k in (
        PROJECT, REGION, JOB_NAME, JOB_IMAGE, JOB_SERVICE_ACCOUNT, JOB_CPU, JOB_MEMORY,
        JOB_TASK_TIMEOUT, JOB_MAX_RETRIES, JOB_TASKS, JOB_PARALLELISM, JOB_FEED, JOB_ARGS,
        JOB_ENV, JOB_SECRETS, BUILD_SERVICE_ACCOUNT, BUCKET_NAME, SCHEDULE_NAME, SCHEDULE_CRON,
        SCHEDULE_TIME_ZONE, INDEX_DATA_STORE, INDEX_LOCATION, CLOUD_EMULATOR,
        CLOUD_STORAGE_EMULATOR, EMULATOR_STATE_DIR, EMULATOR_HOST, EMULATOR_PORT,
        EMULATOR_STORAGE_PORT,
    )
}  # fmt: skip
SECTIONS = ("job", "build", "bucket", "schedule", "index", "cloud", "emulator")

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


# ---------------------------------------------------------------------------------------


def find_file(env: Mapping[str, str], start: Path | None = None) -> Path | None:
    """The settings file: the one ``$GOVCTL_CONFIG`` names, else the nearest ``govctl.toml``
    in the current directory or above it, as git finds ``.git``.

    The search goes up to the filesystem root, but not above your home directory (a
    ``govctl.toml`` in it is found, none above it) nor into a directory listed in
    ``$GOVCTL_CEILING_DIRECTORIES`` (colon-separated absolute paths, git's
    ``GIT_CEILING_DIRECTORIES``). A file found above the current directory that another user
    owns is refused rather than read (git's "dubious ownership", CVE-2022-24765: on a shared
    machine anyone can write ``/tmp/govctl.toml``).
    """
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise UsageError(
                f"{CONFIG_ENV}={path} does not exist", fix="unset it or create the file"
            )
        return path.absolute()
    here = (start or Path.cwd()).absolute()
    home = Path(env.get("HOME") or Path.home()).absolute()
    ceilings = {Path(p) for p in env.get(CEILING_ENV, "").split(os.pathsep) if os.path.isabs(p)}
    for directory in (here, *here.parents):
        if directory != here and directory in ceilings:
            return None
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            if directory != here:
                _check_owner(candidate)
            return candidate
        if directory == home:
            return None
    return None


def _check_owner(path: Path) -> None:
    getuid = getattr(os, "getuid", None)  # POSIX only; Windows has no owner to compare
    owner = path.stat().st_uid
    if getuid is not None and owner != getuid():
        raise UsageError(
            f"{path} was found above the current directory but belongs to another user "
            f"(uid {owner}): not read",
            fix=f"set {CONFIG_ENV}={path} to use it, or remove it",
        )


def shown(path: Path) -> str:
    """A settings file as messages name it: ``govctl.toml`` when it is in the current
    directory, else its whole path (which file was read is then news)."""
    return path.name if path.parent == Path.cwd().absolute() else str(path)


def _unknown(path: Path, label: str, suggestion: str | None) -> UsageError:
    return UsageError(f"{shown(path)}: unknown {label}", fix=suggestion)


def _suggest_top(name: str, value: Any) -> str | None:
    """For a top-level name that is no setting: a section (``[jobs]`` → ``[job]``), else a
    top-level key, else any key."""
    if isinstance(value, dict):
        return validate.suggest(f"[{name}]", [f"[{s}]" for s in SECTIONS])
    top = [k.label for k in KEYS.values() if "." not in k.name]
    return validate.suggest(name, top) or validate.suggest(name, [k.label for k in KEYS.values()])


def _suggest_in(section: str, sub: str) -> str | None:
    """For an unknown key of a section: the closest key of that section, else the same key in
    the section it belongs to (``[job] cron`` → ``[schedule] cron``)."""
    own = [k.rpartition(".")[2] for k in KEYS if k.startswith(section + ".")]
    close = validate.closest(sub, own)
    if close is not None:
        return f"did you mean [{section}] {close}?"
    elsewhere = [k.label for k in KEYS.values() if k.name.rpartition(".")[2] == sub]
    return f"did you mean {elsewhere[0]}?" if elsewhere else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read {shown(path)}: {err}") from None
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in SECTIONS:
            values.update(_read_section(path, name, value))
        elif name in KEYS:
            values[name] = value
        else:
            label = f"section [{name}]" if isinstance(value, dict) else f"key {name!r}"
            raise _unknown(path, label, _suggest_top(name, value))
    return values


def _read_section(path: Path, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{shown(path)}: [{name}] must be a table")
    for sub in value:
        if f"{name}.{sub}" not in KEYS:
            raise _unknown(path, f"key [{name}] {sub}", _suggest_in(name, sub))
    return {f"{name}.{sub}": subvalue for sub, subvalue in value.items()}


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


# Lists of shell words (or TOML lists and tables): there a newline separates words as a space does.
_WORD_LISTS = frozenset({"job.args", "job.env", "job.secrets"})


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
            ("file", _read_file(self.path) if self.path else {}),
        ]
        self._gcloud: dict[str, str] | None = None
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.warnings: list[str] = []

    def gcloud(self) -> dict[str, str]:
        if self._gcloud is None:
            self._gcloud = _gcloud(self.env)
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
