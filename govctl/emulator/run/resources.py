"""The resources of the emulated Cloud Run Admin API and the lookups its RPC modules share.

:class:`RunResources` holds jobs, executions, tasks, job IAM policies and operations in memory
(:class:`~govctl.emulator.store.Store` s of proto-plus messages, keyed by resource name) under
the service lock. The RPCs build on it:
:mod:`.executions` (Executions, Tasks, starting an execution), then :mod:`.jobs` (Jobs), then
:mod:`.service` (the :class:`~govctl.emulator.cloud.Service` the emulator loads).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from google.cloud import run_v2

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.rpc import RpcError, aborted, already_exists, not_found
from govctl.emulator.run import names
from govctl.emulator.run.executor import ExecutionRunner
from govctl.emulator.run.operations import RunOperations
from govctl.emulator.run.policies import JobPolicies
from govctl.emulator.store import Store, check_etag

# Every caller of the emulator is this principal (there is no authentication).
PRINCIPAL = "emulator@example.com"  # the IAM service's default owner, user:emulator@example.com

Cond = run_v2.Condition
State = run_v2.Condition.State
CompletionStatus = run_v2.ExecutionReference.CompletionStatus


def condition(type_: str, state: Any, now: datetime, message: str = "", **extra: Any) -> Cond:
    return Cond(type_=type_, state=state, message=message, last_transition_time=now, **extra)


def set_condition(conditions: Any, cond: Cond) -> None:
    for i, existing in enumerate(conditions):
        if existing.type_ == cond.type_:
            if existing.state == cond.state and existing.message == cond.message:
                return
            conditions[i] = cond
            return
    conditions.append(cond)


def new_etag(*parts: object) -> str:
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]
    return f'"{digest}"'


def _job_missing(name: str) -> RpcError:
    n = names.parse_job(name)
    return not_found(
        f"Resource '{n.job}' of kind 'JOB' in region '{n.location}' in project "
        f"'{n.project}' does not exist."
    )


def _job_exists(name: str) -> RpcError:
    return already_exists(f"Resource '{names.parse_job(name).job}' already exists.")


class RunResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        # proto-plus messages: the Run modules work on them field by field
        self.jobs: Store[run_v2.Job, run_v2.Job] = Store(
            run_v2.Job, raw=False, missing=_job_missing, exists=_job_exists
        )
        self.executions: Store[run_v2.Execution, run_v2.Execution] = Store(
            run_v2.Execution,
            raw=False,
            missing="Execution {name} does not exist.",
        )
        self.tasks: Store[run_v2.Task, run_v2.Task] = Store(
            run_v2.Task, raw=False, missing="Task {name} does not exist."
        )
        self.policies = JobPolicies(self, self.require_job)
        self.operations: RunOperations = RunOperations(self)
        # execution name -> operations finished with it: (operation name, "run" | "cancel")
        self.execution_ops: dict[str, list[tuple[str, str]]] = {}
        self.runners: dict[str, ExecutionRunner] = {}
        self.closed = False  # set when the emulator stops: no new executions

    # lookups ---------------------------------------------------------------------------------
    def require_job(self, name: str) -> run_v2.Job:
        return self.jobs.require(name)

    def require_execution(self, name: str) -> run_v2.Execution:
        return self.executions.require(name)

    def tasks_of(self, execution_name: str) -> list[run_v2.Task]:
        return sorted(self.tasks.under(f"{execution_name}/tasks/"), key=lambda t: t.index)

    def now(self) -> datetime:
        return self.cloud.clock.now()

    def check_etag(self, given: str, current: str, name: str) -> None:
        message = (
            f"The etag {given} does not match the current etag {current} of {name}; "
            "read it again and retry."
        )
        check_etag(given, current, message, aborted)
