"""Checks and parsers for every value an operator types, shared by settings and flags.

Each parser takes the raw value and a ``where`` (the key or flag, with its source) and returns
the normalised value or raises :class:`UsageError` (exit 2) naming the bad value and the
expected form, so a mistake is caught before any API call. The limits are Cloud Run's and
Cloud Scheduler's (../shared/GCP-FACTS.md; the emulator enforces the same ones).
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from govctl.errors import UsageError

# Regions with Cloud Run jobs ("Jobs CPU in REGION" SKUs in the Billing Catalog, 2026-04).
REGIONS = tuple(
    [
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "asia-southeast3",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west10",
        "europe-west12",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-east7",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
        "us-west8",
    ]
)

CPUS = (1, 2, 4, 6, 8)
MIB = 1
GIB = 1024
# Memory each CPU size accepts, in MiB: the vCPU and memory table of "Configure CPU limits for
# jobs" (https://docs.cloud.google.com/run/docs/configuring/jobs/cpu; the same table is on
# .../jobs/memory-limits). 1 and 2 vCPU accept from 128 MiB (it was 512 MiB until 2025).
MEMORY_BY_CPU = {1: (128, 4 * GIB), 2: (128, 8 * GIB), 4: (2 * GIB, 16 * GIB),
                 6: (4 * GIB, 24 * GIB), 8: (4 * GIB, 32 * GIB)}  # fmt: skip
MAX_TASK_TIMEOUT = timedelta(hours=168)
LONG_TASK_TIMEOUT = timedelta(hours=24)  # above this was Preview for a while: warn
MAX_RETRIES = 10
MAX_TASKS = 10_000
# Set by Cloud Run itself (container contract), or by govctl from its own keys.
RESERVED_ENV = frozenset(
    [
        "PORT",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "CLOUD_RUN_JOB",
        "CLOUD_RUN_EXECUTION",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_ATTEMPT",
        "CLOUD_RUN_TASK_COUNT",
    ]
)
# Words in a variable's name that mean a credential: such a variable must come from Secret
# Manager. Anywhere in the name:
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
# As a whole word between underscores only (AUTH, not AUTHOR; PASS, not PASSAGE):
SECRET_NAME_WORDS = frozenset({"AUTH", "OAUTH", "PASS", "PWD", "CREDS", "PAT", "COOKIE"})
OWN_ENV = {"REPOS_FEED_URL": "[job] feed", "GCS_BUCKET_NAME": "[bucket] name"}
SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT",
              "EMERGENCY")  # fmt: skip

_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_JOB_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_SCHEDULER_NAME = re.compile(r"[A-Za-z0-9_-]{1,500}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION_NUMBER = re.compile(r"[1-9][0-9]*")
_SERVICE_ACCOUNT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.:-]+\.gserviceaccount\.com")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")
_MEMORY = re.compile(r"(\d+)(Mi|Gi)")
_LOOSE_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)(B?)", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;.]+")
_IMAGE = re.compile(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]{1,128})?(@sha256:[0-9a-f]{64})?")


def _bad(where: str, value: Any, expected: str, hint: str | None = None) -> UsageError:
    return UsageError(f"invalid {where} {value!r}: expected {expected}", fix=hint)


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``value``, if any is close."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(value: str, choices: Iterable[str]) -> str | None:
    """``did you mean X?`` for the closest choice, if any is close."""
    close = closest(value, choices)
    return f"did you mean {close}?" if close else None


def _matching(value: Any, pattern: re.Pattern[str], where: str, expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(where, value, expected)
    return value


def project(value: Any, where: str = "project") -> str:
    return _matching(value, _PROJECT, where, "a project id: 6-30 lowercase letters, digits or "
                     "hyphens, starting with a letter (e.g. govreposcrape)")  # fmt: skip


def region(value: Any, where: str = "region") -> str:
    if not isinstance(value, str) or value not in REGIONS:
        hint = suggest(str(value), REGIONS) or "see `gcloud run regions list`"
        raise _bad(where, value, "a Cloud Run region such as us-central1 or europe-west2", hint)
    return value


def job_name(value: Any, where: str = "[job] name") -> str:
    return _matching(value, _JOB_NAME, where, "a Cloud Run job name: up to 63 lowercase "
                     "letters, digits or hyphens, starting with a letter, not ending with a "
                     "hyphen")  # fmt: skip


def scheduler_name(value: Any, where: str = "[schedule] name") -> str:
    expected = "a scheduler job id: letters, digits, hyphens or underscores"
    return _matching(value, _SCHEDULER_NAME, where, expected)


# Cloud Storage's bucket naming rules (https://cloud.google.com/storage/docs/buckets#naming):
# no name "represented as an IP address in dotted-decimal notation", none beginning with
# "goog", none containing "google or close misspellings, such as g00gle" (Google lists no
# others; 0 for o and 1 for l are refused here).
_DOTTED_DECIMAL = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_GOOGLE = re.compile(r"g[o0][o0]g[l1]e")


def bucket_name(value: Any, where: str = "[bucket] name") -> str:
    if isinstance(value, str) and value.startswith("gs://"):
        raise _bad(where, value, "a bare bucket name", f"write {value[5:].strip('/')!r}")
    if not isinstance(value, str) or not _BUCKET.fullmatch(value):
        raise _bad(where, value, "a bucket name: 3-63 lowercase letters, digits, '-', '_' or "
                   "'.', starting and ending with a letter or digit")  # fmt: skip
    reason = (
        "it looks like an IP address" if _DOTTED_DECIMAL.fullmatch(value)
        else "it begins with 'goog'" if value.startswith("goog")
        else "it contains 'google' (or a look-alike)" if _GOOGLE.search(value)
        else None
    )  # fmt: skip
    if reason:
        raise UsageError(
            f"invalid {where} {value!r}: Cloud Storage refuses it, {reason}",
            fix="see https://cloud.google.com/storage/docs/buckets#naming",
        )
    return value


def service_account(value: Any, where: str = "[job] service_account") -> str:
    expected = "a service account e-mail such as name@PROJECT.iam.gserviceaccount.com"
    return _matching(value, _SERVICE_ACCOUNT, where, expected)


def image(value: Any, where: str = "[job] image") -> str:
    if not isinstance(value, str) or not _IMAGE.fullmatch(value):
        form = "REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[:TAG|@sha256:DIGEST]"
        raise _bad(where, value, f"an image reference such as {form}")
    host = value.split("/", 1)[0]
    if host == "gcr.io" or host.endswith(".gcr.io"):
        raise UsageError(
            f"invalid {where} {value!r}: Container Registry (gcr.io) is shut down",
            fix="use Artifact Registry: REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE",
        )
    return value


_URL = re.compile(r"((https?|gs)://[^\s/]+|file://)/?\S*")


_USERINFO = re.compile(r"(://)[^/?#\s]*@")


def redacted(text: str) -> str:
    """``text`` with the user name and password of any URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)


def url(value: Any, where: str = "[job] feed") -> str:
    # file:// only makes sense where the task runs on this machine (the emulator, local run).
    shown = redacted(value) if isinstance(value, str) else value
    if not isinstance(value, str) or not _URL.fullmatch(value):
        raise _bad(where, shown, "an https://, http://, gs:// (or, locally, file://) URL")
    try:
        netloc = urlsplit(value).netloc
    except ValueError as err:  # e.g. an unbalanced [ in the host
        raise _bad(where, shown, f"a well-formed URL ({err})") from None
    if "@" in netloc:
        # The URL is stored in the job's spec and shows in `config show`, plans, the job's
        # log lines and its run reports: a credential in it would be everywhere.
        raise UsageError(
            f"invalid {where} {shown!r}: expected a URL without a user name or password",
            fix="publish the feed where it can be read without credentials (the job sends "
            "none when it downloads the feed)",
        )
    return value


def integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(where, value, f"a whole number from {low} to {high:,}")
    return value


def number(value: Any, where: str, low: float, high: float, form: str) -> float:
    """A finite number from ``low`` to ``high``; ``form`` says what is expected."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        result = math.nan
    if not math.isfinite(result) or not low <= result <= high:
        raise _bad(where, value, form)
    return result


def cpu(value: Any, where: str = "[job] cpu") -> int:
    text = str(value).strip()
    if text.endswith("000m") and text[:-4].isdigit():  # Kubernetes form, as gcloud shows it
        text = text[:-4]
    if not text.isdigit() or int(text) not in CPUS or isinstance(value, bool | float):
        raise _bad(where, value, "a number of vCPUs: 1, 2, 4, 6 or 8")
    return int(text)


def memory_mib(value: Any, where: str = "[job] memory") -> int:
    """A memory size in Kubernetes binary units (``512Mi``, ``4Gi``) as MiB."""
    text = str(value).strip()
    match = _MEMORY.fullmatch(text)
    if match and not isinstance(value, bool):
        return int(match[1]) * (GIB if match[2] == "Gi" else MIB)
    hint = None
    loose = _LOOSE_MEMORY.fullmatch(text)
    if loose and loose[2]:
        hint = f"did you mean {loose[1]}{loose[2].upper()}i? (Cloud Run sizes are Mi or Gi)"
    raise _bad(where, value, "a size in Mi or Gi such as 512Mi or 4Gi", hint)


def format_memory(mib: int) -> str:
    return f"{mib // GIB}Gi" if mib % GIB == 0 else f"{mib}Mi"


def cpu_memory(cpus: int, mib: int, where: str = "[job] memory") -> None:
    low, high = MEMORY_BY_CPU[cpus]
    if not low <= mib <= high:
        raise UsageError(
            f"invalid {where} {format_memory(mib)} for {cpus} vCPU: expected "
            f"{format_memory(low)} to {format_memory(high)}",
            fix="raise [job] cpu for more memory" if mib > high else "lower [job] cpu",
        )


def duration(value: Any, where: str, *, allow_zero: bool = False) -> timedelta:
    """``90s``, ``30m``, ``6h``, ``1h30m``, ``2d`` or a number of seconds."""
    text = str(value).strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{value}s"
    match = _DURATION.fullmatch(text) if text else None
    if not match or not any(match.groups()):
        raise _bad(where, value, "a duration such as 90s, 30m, 6h or 1h30m")
    d, h, m, s = match.groups()
    result = timedelta(days=int(d or 0), hours=int(h or 0), minutes=int(m or 0),
                       seconds=float(s or 0))  # fmt: skip
    if not allow_zero and result <= timedelta(0):
        raise _bad(where, value, "a duration above zero")
    return result


def format_duration(delta: timedelta | float) -> str:
    """``6h``, ``1h30m``, ``2m05s``, ``41s`` (how durations are written back to the operator)."""
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return (
            f"{hours}h"
            + (f"{minutes:02d}m" if minutes or secs else "")
            + (f"{secs:02d}s" if secs else "")
        )
    if minutes:
        return f"{minutes}m" + (f"{secs:02d}s" if secs else "")
    return f"{secs}s"


def task_timeout(value: Any, where: str = "[job] task_timeout") -> timedelta:
    result = duration(value, where)
    if result > MAX_TASK_TIMEOUT:
        raise _bad(where, value, "a duration of at most 168h (Cloud Run's task timeout limit)")
    return result


def task_timeout_warning(timeout: timedelta, where: str = "[job] task_timeout") -> str | None:
    """What to say about a valid timeout long enough to need saying."""
    if timeout <= LONG_TASK_TIMEOUT:
        return None
    return (f"{where} {format_duration(timeout)} is over 24h: Cloud Run bills the whole "
            "task and such timeouts were Preview; consider more tasks")  # fmt: skip


def cron(value: Any, where: str = "[schedule] cron") -> str:
    from croniter import croniter

    text = " ".join(str(value).split())
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise _bad(where, value, "a five-field unix cron such as '0 2 * * *' "
                   "(minute hour day-of-month month day-of-week)")  # fmt: skip
    return text


def time_zone(value: Any, where: str = "[schedule] time_zone") -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        if not isinstance(value, str) or not value or value != value.strip():
            raise ValueError
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        hint = suggest(str(value), available_timezones())
        raise _bad(
            where, value, "an IANA time zone such as Etc/UTC or Europe/London", hint
        ) from None
    return value


def env_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise _bad(where, name, "an environment variable name: letters, digits and '_', "
                   "not starting with a digit")  # fmt: skip
    if name in RESERVED_ENV:
        raise UsageError(f"invalid {where} {name!r}: Cloud Run sets {name} itself")
    if name in OWN_ENV:
        raise UsageError(f"invalid {where} {name!r}: govctl sets it", fix=f"use {OWN_ENV[name]}")
    return name


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a credential (…TOKEN…, …PASSWD…, …_AUTH, …)."""
    upper = name.upper()
    words = set(upper.split("_"))
    return any(word in upper for word in SECRET_WORDS) or bool(words & SECRET_NAME_WORDS)


def plain_env_name(name: str, where: str) -> str:
    """Refuse a plain variable whose name says credential (its value is never echoed)."""
    if looks_secret(name):
        raise UsageError(
            f"invalid {where} {name!r}: it looks like a secret, and a plain value is readable "
            "by anyone who can view the job",
            fix=f"use [job] secrets and `govctl secrets set {name}`",
        )
    return name


def env_map(value: Any, where: str = "[job] env") -> dict[str, str]:
    """A TOML table, or ``K=V`` words (``GOVCTL_JOB_ENV``), as a dict of strings.

    A name that looks like a credential is refused: a plain value is stored in the job's
    spec, readable by anyone who can view the job, and shown in plans.
    """
    if isinstance(value, str):
        value = env_pairs(words(value, where), where)
    if not isinstance(value, Mapping):
        raise _bad(where, value, 'a table of NAME = "value"')
    result = {}
    for name, item in value.items():
        env_name(name, f"{where} name")
        plain_env_name(name, f"{where} name")
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise _bad(f"{where}.{name}", item, "a string")
        result[name] = str(item)
    return result


def env_pairs(values: Iterable[str], where: str = "--env") -> dict[str, str]:
    result = {}
    for item in values:
        name, sep, val = item.partition("=")
        if not sep:
            raise _bad(where, item, "NAME=VALUE")
        result[env_name(name, where)] = val
    return result


def secret_ref(value: Any, where: str) -> tuple[str, str]:
    """``secret-id`` or ``secret-id:VERSION`` (a version number or ``latest``)."""
    if isinstance(value, str):
        secret, _, version = value.partition(":")
        version = version or "latest"
        number = version == "latest" or _VERSION_NUMBER.fullmatch(version)
        if _SECRET_ID.fullmatch(secret) and number:
            return secret, version
    raise _bad(where, value, "a Secret Manager secret id with an optional version, such as "
               "github-token or github-token:3 (letters, digits, '-' and '_')")  # fmt: skip


def format_secret_ref(secret: str, version: str) -> str:
    return secret if version == "latest" else f"{secret}:{version}"


def secret_map(value: Any, where: str = "[job] secrets") -> dict[str, str]:
    """``{NAME = "secret-id[:version]"}`` (or ``NAME=secret-id`` words) as NAME -> reference."""
    if isinstance(value, str):
        value = env_pairs(words(value, where), where)
    if not isinstance(value, Mapping):
        raise _bad(where, value, 'a table of NAME = "secret-id[:version]"')
    result = {}
    for name, item in value.items():
        env_name(name, f"{where} name")
        result[name] = format_secret_ref(*secret_ref(item, f"{where} entry {name}"))
    return result


def secret_id_for(name: str) -> str:
    """The secret id a variable gets by default: ``GITHUB_TOKEN`` -> ``github-token``."""
    return re.sub(r"-+", "-", name.lower().replace("_", "-")).strip("-") or "secret"


def words(value: str, where: str) -> list[str]:
    """``value`` split as a shell splits it (``GOVCTL_JOB_ARGS``, ``GOVCTL_JOB_ENV``, …)."""
    try:
        return shlex.split(value)
    except ValueError as err:  # "No closing quotation", "No escaped character"
        raise _bad(where, value, f"shell words with balanced quotes ({err})") from None


def string_list(value: Any, where: str = "[job] args") -> tuple[str, ...]:
    if isinstance(value, str):
        value = words(value, where)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _bad(where, value, 'a list of strings such as ["--concurrency", "8"]')
    return tuple(value)


def emails(values: Iterable[str], where: str = "--email") -> tuple[str, ...]:
    """E-mail addresses, trimmed and without repeats; checked loosely (one @, a dot in the
    domain, no spaces): Cloud Monitoring has the last say."""
    for value in values:
        if not _EMAIL.fullmatch(value.strip()):
            raise _bad(where, value, "an e-mail address such as ops@example.org")
    return tuple(dict.fromkeys(v.strip() for v in values))


def severity(value: Any, where: str = "--severity") -> str:
    text = str(value).upper()
    if text == "WARN":
        text = "WARNING"
    if text not in SEVERITIES:
        raise _bad(where, value, "a severity: " + ", ".join(SEVERITIES[1:]),
                   suggest(text, SEVERITIES))  # fmt: skip
    return text


def timestamp(value: Any, where: str) -> datetime:
    """An ISO 8601 time (``2026-11-30T14:00``, ``2026-11-30``); naive means the local zone."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _bad(where, value, "a time such as 2026-11-30T14:00 or 2026-11-30T14:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # the operator's zone
    return parsed.astimezone(UTC)
