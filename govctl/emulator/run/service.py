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

from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from govctl.emulator.apis import Bound
from govctl.emulator.run.jobs import JobsRpcs
from govctl.emulator.run.progress import finish_execution


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
        return self.policies.policy(job_name)

    # gRPC ------------------------------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        return [self.jobs_rpcs(), *self.executions_rpcs()]

    # lifecycle and persistence ---------------------------------------------------------------
    def stopping(self) -> None:
        # WaitOperation callers get the operation as it stands instead of a cancelled call.
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
            for ex_name in list(self.executions.items):
                finish_execution(self, ex_name, "interrupted")

    def dump(self) -> Any:
        return {
            "jobs": self.jobs.dump(),
            "executions": self.executions.dump(),
            "tasks": self.tasks.dump(),
            "policies": self.policies.dump(),
            "operations": self.operations.dump(),
            "execution_operations": {
                k: [list(v) for v in ops] for k, ops in self.execution_ops.items()
            },
        }

    def load(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        with self.lock:
            self.jobs.load(data.get("jobs", []))
            self.executions.load(data.get("executions", []))
            self.tasks.load(data.get("tasks", []))
            self.policies.load(data.get("policies", {}))
            self.operations.load(data.get("operations", []))
            self.execution_ops = {
                k: [(op, kind) for op, kind in ops]
                for k, ops in data.get("execution_operations", {}).items()
            }
            # Executions that were running when the emulator went away cannot resume.
            for ex_name in list(self.executions.items):
                finish_execution(self, ex_name, "interrupted")
