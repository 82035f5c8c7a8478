"""Cloud Run Admin API v2 as one :class:`~govctl.emulator.cloud.Service` of the loopback cloud.

The RPCs live by resource: :mod:`.jobs` (Jobs, RunJob, job IAM) builds on :mod:`.executions`
(Executions, Tasks, starting an execution), which builds on :mod:`.resources` (the stored
jobs, executions, tasks, policies and operations). :mod:`.progress` turns running tasks into
fields; :mod:`.operations` serves ``google.longrunning.Operations``. This module adds the
public contract other services use, the handler wiring, shutdown and the state file.
See docs/emulator/run.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from govctl.emulator.iam import policy as iam_policy
from govctl.emulator.run import policies
from govctl.emulator.run.jobs import JobsRpcs
from govctl.emulator.run.progress import finish_execution
from govctl.emulator.state import from_jsonable, to_jsonable


class RunService(JobsRpcs):
    key = "run"

    # public contract (see govctl/emulator/cloud.py) ------------------------------------------
    def run_job(
        self, job_name: str, overrides: run_v2.RunJobRequest.Overrides | None = None
    ) -> run_v2.Execution:
        """Start an execution of ``job_name`` (as RunJob does) and return it."""
        execution, _ = self.start_execution(job_name, overrides, etag="", validate_only=False)
        return execution

    def job_iam_policy(self, job_name: str) -> policy_pb2.Policy:
        with self.lock:
            self.require_job(job_name)
            return iam_policy.copy(self.policies.get(job_name) or policies.empty_policy())

    # gRPC ------------------------------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [self.jobs_handler(), *self.executions_handlers(), self.operations.handler()]

    # lifecycle and persistence ---------------------------------------------------------------
    def stopping(self) -> None:
        # WaitOperation callers get the operation as it stands instead of a cancelled call.
        self.operations.stopping.set()
        self.operations.wake()

    def stop(self) -> None:
        with self.lock:
            self.closed = True
            runners = list(self.runners.values())
        self.stopping()
        for runner in runners:
            runner.cancel(interrupted=True)
        for runner in runners:
            runner.join(3.0)
        with self.lock:
            for ex_name in list(self.executions):
                finish_execution(self, ex_name, "interrupted")

    def dump(self) -> Any:
        return {
            "jobs": [to_jsonable(j) for j in self.jobs.values()],
            "executions": [to_jsonable(e) for e in self.executions.values()],
            "tasks": [to_jsonable(t) for t in self.tasks.values()],
            "policies": {name: to_jsonable(p) for name, p in self.policies.items()},
            "operations": self.operations.dump(),
            "execution_operations": {
                k: [list(v) for v in ops] for k, ops in self.execution_ops.items()
            },
        }

    def load(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        with self.lock:
            self.jobs = _by_name(run_v2.Job, data.get("jobs", []))
            self.executions = _by_name(run_v2.Execution, data.get("executions", []))
            self.tasks = _by_name(run_v2.Task, data.get("tasks", []))
            self.policies = {
                name: from_jsonable(policy_pb2.Policy, d)
                for name, d in data.get("policies", {}).items()
            }
            self.operations.load(data.get("operations", []))
            self.execution_ops = {
                k: [(op, kind) for op, kind in ops]
                for k, ops in data.get("execution_operations", {}).items()
            }
            # Executions that were running when the emulator went away cannot resume.
            for ex_name in list(self.executions):
                finish_execution(self, ex_name, "interrupted")


def _by_name(cls: type, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {msg.name: msg for msg in (from_jsonable(cls, d) for d in items)}
