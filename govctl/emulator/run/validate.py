"""The job spec rules Cloud Run enforces, and the defaults it fills in.

Every rule names its source; docs/emulator/run.md lists them in one table.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from google.cloud import run_v2

from govctl.emulator.rpc import invalid_argument

# https://cloud.google.com/run/docs/configuring/jobs/cpu: integer CPUs up to 8 (1, 2, 4, 6, 8
# are the sizes the platform offers).
ALLOWED_CPUS = (1, 2, 4, 6, 8)
GIB = 1 << 30
MIB = 1 << 20
# Memory each CPU size accepts: the "vCPU and memory table" of "Configure CPU limits for jobs"
# (https://docs.cloud.google.com/run/docs/configuring/jobs/cpu) and "Required memory when
# setting a CPU value" of https://docs.cloud.google.com/run/docs/configuring/jobs/memory-limits:
# 1 vCPU 128 MiB to 4 GiB, 2 vCPU 128 MiB to 8 GiB, … 8 vCPU 4 to 32 GiB. (Older copies of both
# pages said 512 MiB for 1 and 2 vCPU; the memory page still says "the minimum amount of memory
# you can configure in the second generation execution environment is 512 MiB", and jobs run
# only in the second generation. The table is the newer statement; see docs/emulator/run.md.)
MEMORY_RANGE_BY_CPU = {
    1: (128 * MIB, 4 * GIB),
    2: (128 * MIB, 8 * GIB),
    4: (2 * GIB, 16 * GIB),
    6: (4 * GIB, 24 * GIB),
    8: (4 * GIB, 32 * GIB),
}
DEFAULT_CPU = "1000m"
DEFAULT_MEMORY = "512Mi"
# https://cloud.google.com/run/docs/configuring/task-timeout: default 10 minutes, at most
# 168 hours (7 days).
DEFAULT_TIMEOUT = timedelta(minutes=10)
MAX_TIMEOUT = timedelta(hours=168)
# https://cloud.google.com/run/docs/configuring/max-retries: 0 to 10, default 3.
DEFAULT_MAX_RETRIES = 3
MAX_RETRIES = 10
# https://cloud.google.com/run/docs/create-jobs: up to 10,000 tasks per execution.
MAX_TASK_COUNT = 10_000
# https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs: labels and
# annotations in these namespaces are rejected.
RESERVED_KEY_PREFIXES = (
    "run.googleapis.com",
    "cloud.googleapis.com",
    "serving.knative.dev",
    "autoscaling.knative.dev",
)
# https://cloud.google.com/run/docs/container-contract#env-vars: set by Cloud Run itself.
RESERVED_ENV = frozenset(
    {
        "PORT",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "CLOUD_RUN_JOB",
        "CLOUD_RUN_EXECUTION",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_ATTEMPT",
        "CLOUD_RUN_TASK_COUNT",
    }
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<unit>[a-zA-Z]*)$")
_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
}


def parse_cpu(value: str) -> Decimal:
    """A Kubernetes CPU quantity ("1", "2", "1000m", "0.5") in CPUs."""
    m = _QUANTITY.fullmatch(value.strip())
    if not m or m["unit"] not in ("", "m"):
        raise invalid_argument(f"Invalid value for CPU limit: {value!r}")
    try:
        cpus = Decimal(m["num"])
    except InvalidOperation:
        raise invalid_argument(f"Invalid value for CPU limit: {value!r}") from None
    return cpus / 1000 if m["unit"] == "m" else cpus


def parse_memory(value: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "2Gi", "1G") in bytes."""
    m = _QUANTITY.fullmatch(value.strip())
    if not m or m["unit"] not in _MEMORY_UNITS:
        raise invalid_argument(f"Invalid value for memory limit: {value!r}")
    return int(Decimal(m["num"]) * _MEMORY_UNITS[m["unit"]])


def _human_bytes(n: int) -> str:
    return f"{n / GIB:g} GiB" if n >= GIB else f"{n / MIB:g} MiB"


def check_resources(limits: dict[str, str], where: str) -> None:
    unknown = sorted(set(limits) - {"cpu", "memory"})
    if unknown:
        raise invalid_argument(
            f"{where}.resources.limits: unsupported resource {unknown[0]!r} "
            "(the emulator supports cpu and memory)"
        )
    cpus = parse_cpu(limits.get("cpu", DEFAULT_CPU))
    if cpus != cpus.to_integral_value() or int(cpus) not in ALLOWED_CPUS:
        raise invalid_argument(
            f"{where}.resources.limits.cpu: {limits.get('cpu')!r} is not supported for jobs; "
            f"use one of {', '.join(map(str, ALLOWED_CPUS))}"
        )
    memory = parse_memory(limits.get("memory", DEFAULT_MEMORY))
    low, high = MEMORY_RANGE_BY_CPU[int(cpus)]
    if not low <= memory <= high:
        raise invalid_argument(
            f"{where}.resources.limits.memory: {limits.get('memory', DEFAULT_MEMORY)!r} is not "
            f"supported with {int(cpus)} CPU; memory must be between {_human_bytes(low)} and "
            f"{_human_bytes(high)}"
        )


# A secret of the job's project, or of another project by its full name.
_SECRET_REF = re.compile(r"([A-Za-z0-9_-]{1,255}|projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255})")


def check_env(env: Any, where: str) -> None:
    seen: set[str] = set()
    for i, var in enumerate(env):
        name = var.name
        if not name or not _ENV_NAME.fullmatch(name):
            raise invalid_argument(
                f"{where}.env[{i}].name: invalid environment variable name {name!r}"
            )
        if name in RESERVED_ENV:
            raise invalid_argument(
                f"{where}.env[{i}].name: {name} is reserved and set by Cloud Run"
            )
        if name in seen:
            raise invalid_argument(f"{where}.env[{i}].name: duplicate environment variable {name}")
        seen.add(name)
        if "value_source" in var:
            if var.value:
                raise invalid_argument(
                    f"{where}.env[{i}]: value and value_source are mutually exclusive"
                )
            ref = var.value_source.secret_key_ref
            if not ref.secret:
                raise invalid_argument(
                    f"{where}.env[{i}].value_source.secret_key_ref.secret: a secret is required"
                )
            if not _SECRET_REF.fullmatch(ref.secret):
                raise invalid_argument(
                    f"{where}.env[{i}].value_source.secret_key_ref.secret: invalid secret "
                    f"{ref.secret!r}: expected SECRET or projects/PROJECT/secrets/SECRET"
                )


def check_timeout(timeout: timedelta, where: str) -> None:
    if timeout <= timedelta(0):
        raise invalid_argument(f"{where}: timeout must be positive")
    if timeout > MAX_TIMEOUT:
        raise invalid_argument(
            f"{where}: timeout {int(timeout.total_seconds())}s exceeds the maximum of "
            f"{int(MAX_TIMEOUT.total_seconds())}s (168 hours)"
        )


def _check_keys(mapping: Any, what: str) -> None:
    for key in mapping:
        if key.split("/", 1)[0].endswith(RESERVED_KEY_PREFIXES) and "/" in key:
            raise invalid_argument(
                f"{what} {key!r} uses a reserved namespace ({', '.join(RESERVED_KEY_PREFIXES)})"
            )


def validate_job(job: run_v2.Job) -> None:
    """INVALID_ARGUMENT for what the real service rejects; call after :func:`fill_defaults`."""
    _check_keys(job.labels, "label")
    _check_keys(job.annotations, "annotation")
    _check_keys(job.template.labels, "template label")
    _check_keys(job.template.annotations, "template annotation")
    tmpl = job.template
    if tmpl.task_count < 0 or tmpl.task_count > MAX_TASK_COUNT:
        raise invalid_argument(
            f"template.task_count must be between 1 and {MAX_TASK_COUNT}, got {tmpl.task_count}"
        )
    if tmpl.parallelism < 0:
        raise invalid_argument(f"template.parallelism must be >= 0, got {tmpl.parallelism}")
    if tmpl.parallelism > tmpl.task_count:
        raise invalid_argument(
            f"template.parallelism ({tmpl.parallelism}) must be <= template.task_count "
            f"({tmpl.task_count})"
        )
    task = tmpl.template
    if not 0 <= task.max_retries <= MAX_RETRIES:
        raise invalid_argument(
            f"template.template.max_retries must be between 0 and {MAX_RETRIES}, "
            f"got {task.max_retries}"
        )
    check_timeout(task.timeout, "template.template.timeout")
    if not task.containers:
        raise invalid_argument("template.template.containers: at least one container is required")
    names: set[str] = set()
    for i, c in enumerate(task.containers):
        where = f"template.template.containers[{i}]"
        if not c.image:
            raise invalid_argument(f"{where}.image is required")
        if c.name:
            if c.name in names:
                raise invalid_argument(f"{where}.name: duplicate container name {c.name!r}")
            names.add(c.name)
        check_resources(dict(c.resources.limits), where)
        check_env(c.env, where)


def fill_defaults(job: run_v2.Job) -> None:
    """The defaults Cloud Run fills in on create and update."""
    tmpl = job.template
    if tmpl.task_count == 0:
        tmpl.task_count = 1
    task = tmpl.template
    if "max_retries" not in task:
        task.max_retries = DEFAULT_MAX_RETRIES
    if "timeout" not in task:
        task.timeout = DEFAULT_TIMEOUT
    for c in task.containers:
        limits = c.resources.limits
        if "cpu" not in limits:
            limits["cpu"] = DEFAULT_CPU
        if "memory" not in limits:
            limits["memory"] = DEFAULT_MEMORY


def validate_overrides(overrides: run_v2.RunJobRequest.Overrides, job: run_v2.Job) -> None:
    if overrides.task_count < 0 or overrides.task_count > MAX_TASK_COUNT:
        raise invalid_argument(
            f"overrides.task_count must be between 1 and {MAX_TASK_COUNT}, "
            f"got {overrides.task_count}"
        )
    if "timeout" in overrides:
        check_timeout(overrides.timeout, "overrides.timeout")
    names = {c.name for c in job.template.template.containers}
    for i, co in enumerate(overrides.container_overrides):
        if co.name and co.name not in names:
            raise invalid_argument(
                f"overrides.container_overrides[{i}].name: "
                f"no container named {co.name!r} in the job"
            )
        if co.clear_args and co.args:
            raise invalid_argument(
                f"overrides.container_overrides[{i}]: clear_args and args are mutually exclusive"
            )
        check_env(co.env, f"overrides.container_overrides[{i}]")
