"""Resource names of Cloud Run Admin v2, parsed and checked as the real service checks them.

``projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/tasks/{task}``
and ``projects/{project}/locations/{location}/operations/{operation}``.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from govctl.emulator.rpc import invalid_argument

# A job id is an RFC 1035 label: lowercase letters, digits and hyphens, starting with a
# letter, not ending with a hyphen, at most 63 characters.
JOB_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
JOB_ID_MAX = 63
# Project ids (6-30 chars) or numbers; kept lenient so any test project name works.
_PROJECT = r"[a-z0-9][-a-z0-9.:]*"
_LOCATION = r"[a-z][-a-z0-9]*"
_SEGMENT = r"[^/\s]+"  # an id never holds whitespace (a trailing newline included)

PARENT_RE = re.compile(rf"^projects/(?P<project>{_PROJECT})/locations/(?P<location>{_LOCATION})$")
JOB_RE = re.compile(
    rf"^projects/(?P<project>{_PROJECT})/locations/(?P<location>{_LOCATION})/jobs/(?P<job>{_SEGMENT})$"
)
EXECUTION_RE = re.compile(
    rf"^projects/(?P<project>{_PROJECT})/locations/(?P<location>{_LOCATION})"
    rf"/jobs/(?P<job>{_SEGMENT})/executions/(?P<execution>{_SEGMENT})$"
)
TASK_RE = re.compile(
    rf"^projects/(?P<project>{_PROJECT})/locations/(?P<location>{_LOCATION})"
    rf"/jobs/(?P<job>{_SEGMENT})/executions/(?P<execution>{_SEGMENT})/tasks/(?P<task>{_SEGMENT})$"
)
OPERATION_RE = re.compile(
    rf"^projects/(?P<project>{_PROJECT})/locations/(?P<location>{_LOCATION})/operations/(?P<operation>{_SEGMENT})$"
)

_PARENT_FORMAT = "projects/{project}/locations/{location}"
_JOB_FORMAT = f"{_PARENT_FORMAT}/jobs/{{job}}"

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Parent:
    project: str
    location: str

    def __str__(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"


@dataclass(frozen=True)
class JobName:
    project: str
    location: str
    job: str

    @property
    def parent(self) -> Parent:
        return Parent(self.project, self.location)

    def __str__(self) -> str:
        return f"{self.parent}/jobs/{self.job}"


def parse_parent(value: str, field: str = "parent") -> Parent:
    m = _match(PARENT_RE, value, field, _PARENT_FORMAT)
    return Parent(m["project"], m["location"])


def check_job_id(job_id: str) -> None:
    if not job_id:
        raise invalid_argument("job_id is required")
    if len(job_id) > JOB_ID_MAX:
        raise invalid_argument(
            f"Invalid job_id {job_id!r}: must be at most {JOB_ID_MAX} characters"
        )
    if not JOB_ID.fullmatch(job_id):
        raise invalid_argument(
            f"Invalid job_id {job_id!r}: must use only lowercase letters, digits and hyphens, "
            "begin with a letter and not end with a hyphen"
        )


def parse_job(value: str, field: str = "name") -> JobName:
    m = _match(JOB_RE, value, field, _JOB_FORMAT)
    check_job_id(m["job"])
    return JobName(m["project"], m["location"], m["job"])


def parse_execution_parent(value: str) -> tuple[Parent, str]:
    """``…/jobs/{job}`` or ``…/jobs/-`` (every job of the location): (parent, job id or "-")."""
    m = _match(JOB_RE, value, "parent", _JOB_FORMAT)
    if m["job"] != "-":
        check_job_id(m["job"])
    return Parent(m["project"], m["location"]), m["job"]


def _match(pattern: re.Pattern[str], value: str, field: str, expected: str) -> re.Match[str]:
    m = pattern.fullmatch(value or "")
    if not m:
        raise invalid_argument(f"Invalid {field} {value!r}: expected {expected}")
    return m


def _check(pattern: re.Pattern[str], value: str, field: str, expected: str) -> str:
    _match(pattern, value, field, expected)
    return value


def check_execution(value: str, field: str = "name") -> str:
    return _check(EXECUTION_RE, value, field, f"{_JOB_FORMAT}/executions/{{execution}}")


def check_task(value: str) -> str:
    return _check(TASK_RE, value, "name", f"{_JOB_FORMAT}/executions/{{execution}}/tasks/{{task}}")


def check_operation(value: str) -> str:
    expected = f"{_PARENT_FORMAT}/operations/{{operation}}"
    return _check(OPERATION_RE, value, "operation name", expected)


def job_of(resource_name: str) -> str:
    """The job name of an execution or task name."""
    return resource_name.split("/executions/", 1)[0]


def new_execution_id(job_id: str) -> str:
    # Cloud Run names executions "{job}-{5 random characters}".
    return f"{job_id}-" + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def task_id(execution_id: str, index: int) -> str:
    return f"{execution_id}-task{index}"
