"""The resources of the emulated Cloud Run Admin API and the lookups its RPC modules share.

:class:`RunResources` holds jobs, executions, tasks, job IAM policies and operations in memory
(protobuf messages, keyed by resource name) under the service lock. The RPCs build on it:
:mod:`.executions` (Executions, Tasks, starting an execution), then :mod:`.jobs` (Jobs), then
:mod:`.service` (the :class:`~govctl.emulator.cloud.Service` the emulator loads).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.rpc import aborted, not_found
from govctl.emulator.run import names
from govctl.emulator.run.executor import ExecutionRunner
from govctl.emulator.run.operations import OperationStore

# Every caller of the emulator is this principal (there is no authentication).
PRINCIPAL = "emulator@example.com"  # the IAM service's default owner, user:emulator@example.com

Cond = run_v2.Condition
State = run_v2.Condition.State
CompletionStatus = run_v2.ExecutionReference.CompletionStatus


def clone(msg: Any) -> Any:
    return type(msg).deserialize(type(msg).serialize(msg))


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


class RunResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.jobs: dict[str, run_v2.Job] = {}
        self.executions: dict[str, run_v2.Execution] = {}
        self.tasks: dict[str, run_v2.Task] = {}
        self.policies: dict[str, policy_pb2.Policy] = {}
        self.operations = OperationStore(self.lock, self.changed)
        # execution name -> operations finished with it: (operation name, "run" | "cancel")
        self.execution_ops: dict[str, list[tuple[str, str]]] = {}
        self.runners: dict[str, ExecutionRunner] = {}
        self.closed = False  # set when the emulator stops: no new executions

    # lookups ---------------------------------------------------------------------------------
    def require_job(self, name: str) -> run_v2.Job:
        job = self.jobs.get(name)
        if job is None:
            n = names.parse_job(name)
            raise not_found(
                f"Resource '{n.job}' of kind 'JOB' in region '{n.location}' in project "
                f"'{n.project}' does not exist."
            )
        return job

    def require_execution(self, name: str) -> run_v2.Execution:
        ex = self.executions.get(name)
        if ex is None:
            raise not_found(f"Execution {name} does not exist.")
        return ex

    def tasks_of(self, execution_name: str) -> list[run_v2.Task]:
        prefix = f"{execution_name}/tasks/"
        return sorted(
            (t for n, t in self.tasks.items() if n.startswith(prefix)), key=lambda t: t.index
        )

    def now(self) -> datetime:
        return self.cloud.clock.now()

    def check_etag(self, given: str, current: str, name: str) -> None:
        if given and given != current:
            raise aborted(
                f"The etag {given} does not match the current etag {current} of {name}; "
                "read it again and retry."
            )
