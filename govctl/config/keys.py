"""The setting keys: each one's TOML place, environment variable, parser, default and meaning.

Adding a setting starts here (a :class:`Key` in the table and in :data:`KEYS`), then gets a
typed attribute in :mod:`govctl.config.settings` and a line in
:func:`govctl.config.resolve.load`. The defaults are the old runbook's, so an existing
deployment is adopted, not duplicated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

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
ALERTS_EMAILS: Key[tuple[str, ...]] = Key(
    "alerts.emails", "GOVCTL_ALERTS_EMAILS", validate.email_list, (),
    "who `govctl alerts set` e-mails about failed, missing or unstarted runs "
    "(default: the addresses already set)")
ALERTS_STALE_AFTER = Key("alerts.stale_after", "GOVCTL_ALERTS_STALE_AFTER",
                         validate.stale_after, None,
                         "alert when no execution succeeded for this long, 2m-24h30m (default: "
                         "the current window, or two intervals of the schedule)")
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
        SCHEDULE_TIME_ZONE, ALERTS_EMAILS, ALERTS_STALE_AFTER, INDEX_DATA_STORE, INDEX_LOCATION,
        CLOUD_EMULATOR, CLOUD_STORAGE_EMULATOR, EMULATOR_STATE_DIR, EMULATOR_HOST, EMULATOR_PORT,
        EMULATOR_STORAGE_PORT,
    )
}  # fmt: skip
SECTIONS = ("job", "build", "bucket", "schedule", "alerts", "index", "cloud", "emulator")
