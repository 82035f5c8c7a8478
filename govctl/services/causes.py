"""Why a Cloud Run task failed, read from the fields Cloud Run sets, never from a message.

The messages of a task and of its execution are for people; their words change, and the loopback
cloud writes its own. What says why is structured (Run Admin API v2,
google/cloud/run/v2/task.proto and condition.proto):

- the task's ``Completed`` condition ``reason``: ``SECRETS_ACCESS_CHECK_FAILED`` ("At least one
  Access check on secrets failed", ``Condition.CommonReason``) — a secret it could not read;
  ``execution_reason`` ``CANCELLED`` — cancelled;
- ``last_attempt_result.status.code`` ``DEADLINE_EXCEEDED`` (google/rpc/code.proto: "The deadline
  expired before the operation could complete"), or an attempt that ran its whole ``timeout``
  ("Max allowed time duration the Task may be active before the system will actively try to
  mark it failed and kill associated containers", ``Task.timeout``) — its task timeout;
- ``last_attempt_result.term_signal`` 9 (SIGKILL: "set to non-zero if the container is
  terminated by the system"), or the exit code 137 a shell reports for a child so killed
  (128 + 9) — killed for its memory, the system's other reason to kill a task (instances over
  their memory limit "are terminated", https://cloud.google.com/run/docs/configuring/jobs/memory-limits);
- otherwise its ``term_signal`` or ``exit_code``.

tests/data/run_failures.json holds the payloads this is checked against, each with its source.
"""

from __future__ import annotations

import enum

from govctl.gcp.executions import Task

SIGKILL = 9
# A killed child's status as a shell reports it: 128 + the signal.
KILLED_EXIT = 128 + SIGKILL


class Cause(enum.StrEnum):
    SECRET = "secret"  # a [job] secrets entry it could not read at start
    TIMEOUT = "timeout"  # its task timeout
    MEMORY = "memory"  # killed by the system with SIGKILL: its memory limit
    CANCELLED = "cancelled"
    SIGNAL = "signal"  # ended by another signal
    EXIT = "exit"  # the container exited non-zero
    UNKNOWN = "unknown"


def _ran_its_timeout(task: Task) -> bool:
    # Whether ``start_time`` is the first attempt's or the last one's no source says: only an
    # attempt that was the task's only one is measured.
    if task.retried or not task.timeout_s or task.started is None or task.completed is None:
        return False
    return (task.completed - task.started).total_seconds() >= task.timeout_s


def of_task(task: Task) -> Cause:
    """Why ``task`` (failed or cancelled) failed."""
    if task.status == "cancelled" or task.reason in ("CANCELLED", "CANCELLING"):
        return Cause.CANCELLED
    if task.reason == "SECRETS_ACCESS_CHECK_FAILED":
        return Cause.SECRET
    if task.status_code == "DEADLINE_EXCEEDED" or _ran_its_timeout(task):
        return Cause.TIMEOUT
    if task.term_signal == SIGKILL or task.exit_code == KILLED_EXIT:
        return Cause.MEMORY
    if task.term_signal:
        return Cause.SIGNAL
    if task.exit_code:
        return Cause.EXIT
    return Cause.UNKNOWN


def describe(task: Task) -> str:
    """How the task ended, in a few words: "timed out  signal 15", "exit 1"."""
    cause = of_task(task)
    how = {
        Cause.TIMEOUT: ["timed out"],
        Cause.MEMORY: ["out of memory"],
        Cause.SECRET: ["could not read a secret"],
    }.get(cause, [])
    if task.term_signal:
        how.append(f"signal {task.term_signal}")
    elif task.exit_code is not None:
        how.append(f"exit {task.exit_code}")
    return "  ".join(how)
