"""Cloud Run Admin API v2: Jobs, Executions, Tasks and their long-running operations.

See docs/emulator/run.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import shlex
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

import grpc
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.iam import policy as iam_policy
from govctl.emulator.rpc import (
    Method,
    RpcError,
    aborted,
    failed_precondition,
    invalid_argument,
    not_found,
)
from govctl.emulator.run import names, policies, validate
from govctl.emulator.run.executor import AttemptResult, ExecutionRunner, Outcome, Stream, TaskPlan
from govctl.emulator.run.logs import task_log_entry
from govctl.emulator.run.operations import OperationStore
from govctl.emulator.state import from_jsonable, to_jsonable

# Every caller of the emulator is this principal (there is no authentication).
PRINCIPAL = "emulator@example.com"  # the IAM service's default owner, user:emulator@example.com
# How long CancelExecution / DeleteJob wait for killed tasks before answering.
STOP_WAIT = 5.0

Cond = run_v2.Condition
State = run_v2.Condition.State
CompletionStatus = run_v2.ExecutionReference.CompletionStatus


def clone(msg: Any) -> Any:
    return type(msg).deserialize(type(msg).serialize(msg))


def _condition(type_: str, state: Any, now: datetime, message: str = "", **extra: Any) -> Cond:
    return Cond(type_=type_, state=state, message=message, last_transition_time=now, **extra)


def _set_condition(conditions: Any, cond: Cond) -> None:
    for i, existing in enumerate(conditions):
        if existing.type_ == cond.type_:
            if existing.state == cond.state and existing.message == cond.message:
                return
            conditions[i] = cond
            return
    conditions.append(cond)


def _etag(*parts: object) -> str:
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]
    return f'"{digest}"'


def _log_uri(project: str, location: str, job: str, execution: str) -> str:
    query = (
        f'resource.type="cloud_run_job"\nresource.labels.job_name="{job}"\n'
        f'resource.labels.location="{location}"\n'
        f'labels."run.googleapis.com/execution_name"="{execution}"'
    )
    return (
        f"https://console.cloud.google.com/logs/viewer?project={project}"
        f"&advancedFilter={quote(query, safe='')}"
    )


class RunService(Service):
    key = "run"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.jobs: dict[str, run_v2.Job] = {}
        self.executions: dict[str, run_v2.Execution] = {}
        self.tasks: dict[str, run_v2.Task] = {}
        self.policies: dict[str, policy_pb2.Policy] = {}
        self.operations = OperationStore(self.lock, self.changed)
        # execution name -> operations finished with it: (operation name, "run" | "cancel")
        self._exec_ops: dict[str, list[tuple[str, str]]] = {}
        self._runners: dict[str, ExecutionRunner] = {}
        self._stopping = False

    # public contract -------------------------------------------------------------------------
    def run_job(
        self, job_name: str, overrides: run_v2.RunJobRequest.Overrides | None = None
    ) -> run_v2.Execution:
        """Start an execution of ``job_name`` (as RunJob does) and return it."""
        execution, _ = self._run(job_name, overrides, etag="", validate_only=False)
        return execution

    def job_iam_policy(self, job_name: str) -> policy_pb2.Policy:
        with self.lock:
            self._job(job_name)
            return iam_policy.copy(self.policies.get(job_name) or policies.empty_policy())

    # lookups ---------------------------------------------------------------------------------
    def _job(self, name: str) -> run_v2.Job:
        job = self.jobs.get(name)
        if job is None:
            n = names.parse_job(name)
            raise not_found(
                f"Resource '{n.job}' of kind 'JOB' in region '{n.location}' in project "
                f"'{n.project}' does not exist."
            )
        return job

    def _execution(self, name: str) -> run_v2.Execution:
        ex = self.executions.get(name)
        if ex is None:
            raise not_found(f"Execution {name} does not exist.")
        return ex

    def _tasks_of(self, execution_name: str) -> list[run_v2.Task]:
        prefix = f"{execution_name}/tasks/"
        return sorted(
            (t for n, t in self.tasks.items() if n.startswith(prefix)), key=lambda t: t.index
        )

    def _now(self) -> datetime:
        return self.cloud.clock.now()

    # Jobs ------------------------------------------------------------------------------------
    def _finish_job_fields(
        self, job: run_v2.Job, now: datetime, existing: run_v2.Job | None
    ) -> None:
        """Fill every output-only field; ``existing`` is the stored job an update replaces."""
        for field in (
            "latest_created_execution",
            "delete_time",
            "expire_time",
            "terminal_condition",
        ):
            if field in job:
                delattr(job, field)
        del job.conditions[:]
        if existing is None:
            job.uid = str(uuid.uuid4())
            job.generation = 1
            job.create_time = now
            job.creator = PRINCIPAL
            job.execution_count = 0
        else:
            job.uid = existing.uid
            job.generation = existing.generation + 1
            job.create_time = existing.create_time
            job.creator = existing.creator
            job.execution_count = existing.execution_count
            if "latest_created_execution" in existing:
                job.latest_created_execution = existing.latest_created_execution
        job.observed_generation = job.generation
        job.update_time = now
        job.last_modifier = PRINCIPAL
        job.reconciling = False
        job.terminal_condition = _condition("Ready", State.CONDITION_SUCCEEDED, now)
        job.etag = _etag(job.uid, job.generation)

    def _prepare_job(self, job: run_v2.Job) -> run_v2.Job:
        job = clone(job)
        validate.fill_defaults(job)
        validate.validate_job(job)
        return job

    def create_job(self, request: run_v2.CreateJobRequest, context: grpc.ServicerContext) -> Any:
        parent = names.parse_parent(request.parent)
        names.check_job_id(request.job_id)
        name = f"{parent}/jobs/{request.job_id}"
        if request.job.name and request.job.name != name:
            raise invalid_argument(
                f"job.name must be empty or {name!r} when creating a job, got {request.job.name!r}"
            )
        job = self._prepare_job(request.job)
        job.name = name
        with self.lock:
            if name in self.jobs:
                raise rpc.already_exists(f"Resource '{request.job_id}' already exists.")
            self._finish_job_fields(job, self._now(), None)
            if request.validate_only:
                return self.operations.new(str(parent), job, job, store=False)
            self.jobs[name] = job
            self.changed()
            return self.operations.new(str(parent), job, job)

    def get_job(self, request: run_v2.GetJobRequest, context: grpc.ServicerContext) -> run_v2.Job:
        names.parse_job(request.name)
        with self.lock:
            return clone(self._job(request.name))

    def list_jobs(
        self, request: run_v2.ListJobsRequest, context: grpc.ServicerContext
    ) -> run_v2.ListJobsResponse:
        parent = names.parse_parent(request.parent)
        prefix = f"{parent}/jobs/"
        with self.lock:
            jobs = [clone(j) for n, j in sorted(self.jobs.items()) if n.startswith(prefix)]
        chunk, token = rpc.page(jobs, request.page_size, request.page_token)
        return run_v2.ListJobsResponse(jobs=chunk, next_page_token=token)

    def update_job(self, request: run_v2.UpdateJobRequest, context: grpc.ServicerContext) -> Any:
        name = str(names.parse_job(request.job.name, "job.name"))
        parent = name.rsplit("/jobs/", 1)[0]
        job = self._prepare_job(request.job)
        with self.lock:
            existing = self.jobs.get(name)
            if existing is None and not request.allow_missing:
                self._job(name)
            if existing is not None and request.job.etag and request.job.etag != existing.etag:
                raise aborted(
                    f"The etag {request.job.etag} does not match the current etag "
                    f"{existing.etag} of job {name}; read it again and retry."
                )
            self._finish_job_fields(job, self._now(), existing)
            if request.validate_only:
                return self.operations.new(parent, job, job, store=False)
            self.jobs[name] = job
            self.changed()
            return self.operations.new(parent, job, job)

    def delete_job(self, request: run_v2.DeleteJobRequest, context: grpc.ServicerContext) -> Any:
        name = str(names.parse_job(request.name))
        parent = name.rsplit("/jobs/", 1)[0]
        with self.lock:
            job = clone(self._job(name))
            self._check_etag(request.etag, job.etag, name)
            if request.validate_only:
                return self.operations.new(parent, job, job, store=False)
            doomed = [n for n in self.executions if names.job_of(n) == name]
        # Deleting a job deletes its executions; running ones are cancelled first.
        for ex_name in doomed:
            self._cancel_and_wait(ex_name)
        with self.lock:
            job = self.jobs.pop(name, job)
            for ex_name in doomed:
                self._forget_execution(ex_name)
            self.policies.pop(name, None)
            job.delete_time = self._now()
            self.changed()
            return self.operations.new(parent, job, job)

    def _check_etag(self, given: str, current: str, name: str) -> None:
        if given and given != current:
            raise aborted(
                f"The etag {given} does not match the current etag {current} of {name}; "
                "read it again and retry."
            )

    # RunJob ----------------------------------------------------------------------------------
    def run_job_rpc(self, request: run_v2.RunJobRequest, context: grpc.ServicerContext) -> Any:
        overrides = request.overrides if "overrides" in request else None
        _, op = self._run(request.name, overrides, request.etag, request.validate_only)
        return op

    def _run(
        self,
        job_name: str,
        overrides: run_v2.RunJobRequest.Overrides | None,
        etag: str,
        validate_only: bool,
    ) -> tuple[run_v2.Execution, operations_pb2.Operation]:
        jn = names.parse_job(job_name)
        parent = str(jn.parent)
        with self.lock:
            if self._stopping:
                raise RpcError(grpc.StatusCode.UNAVAILABLE, "The emulator is stopping.")
            job = self._job(job_name)
            self._check_etag(etag, job.etag, job_name)
            if overrides is not None:
                validate.validate_overrides(overrides, job)
            execution, tasks, plan = self._new_execution(job, jn, overrides)
            if validate_only:
                return execution, self.operations.new(parent, execution, execution, store=False)
            self.executions[execution.name] = execution
            for task in tasks:
                self.tasks[task.name] = task
            job.execution_count += 1
            job.latest_created_execution = run_v2.ExecutionReference(
                name=execution.name,
                create_time=execution.create_time,
                completion_status=CompletionStatus.EXECUTION_RUNNING,
            )
            op = self.operations.new(parent, execution)
            self._exec_ops[execution.name] = [(op.name, "run")]
            runner = ExecutionRunner(execution.name, plan, _Tracker(self, execution.name, jn))
            self._runners[execution.name] = runner
            self.changed()
            runner.start()
            return clone(execution), op

    def _new_execution(
        self,
        job: run_v2.Job,
        jn: names.JobName,
        overrides: run_v2.RunJobRequest.Overrides | None,
    ) -> tuple[run_v2.Execution, list[run_v2.Task], TaskPlan]:
        now = self._now()
        ex_id = names.new_execution_id(jn.job)
        while f"{job.name}/executions/{ex_id}" in self.executions:
            ex_id = names.new_execution_id(jn.job)
        ex_name = f"{job.name}/executions/{ex_id}"
        tmpl: run_v2.TaskTemplate = clone(job.template.template)
        task_count = job.template.task_count
        if overrides is not None:
            for co in overrides.container_overrides:
                target = next((c for c in tmpl.containers if c.name == co.name), tmpl.containers[0])
                if co.clear_args:
                    del target.args[:]
                elif co.args:
                    target.args = list(co.args)
                for var in co.env:
                    kept = [e for e in target.env if e.name != var.name]
                    target.env = [*kept, var]
            if "timeout" in overrides:
                tmpl.timeout = overrides.timeout
            task_count = overrides.task_count or task_count
        parallelism = min(job.template.parallelism or task_count, task_count)
        log_uri = _log_uri(jn.project, jn.location, jn.job, ex_id)
        execution = run_v2.Execution(
            name=ex_name,
            uid=str(uuid.uuid4()),
            creator=PRINCIPAL,
            generation=1,
            labels=dict(job.template.labels),
            annotations=dict(job.template.annotations),
            create_time=now,
            update_time=now,
            launch_stage=job.launch_stage,
            job=jn.job,
            parallelism=parallelism,
            task_count=task_count,
            template=tmpl,
            reconciling=True,
            conditions=[
                _condition("ResourcesAvailable", State.CONDITION_PENDING, now),
                _condition("Started", State.CONDITION_PENDING, now),
                _condition("Completed", State.CONDITION_PENDING, now),
            ],
            observed_generation=1,
            log_uri=log_uri,
        )
        execution.etag = _etag(execution.uid, 1)
        tasks = []
        for index in range(task_count):
            tid = names.task_id(ex_id, index)
            task = run_v2.Task(
                name=f"{ex_name}/tasks/{tid}",
                uid=str(uuid.uuid4()),
                generation=1,
                labels=dict(job.template.labels),
                create_time=now,
                update_time=now,
                job=jn.job,
                execution=ex_id,
                containers=list(tmpl.containers),
                volumes=list(tmpl.volumes),
                max_retries=tmpl.max_retries,
                timeout=tmpl.timeout,
                service_account=tmpl.service_account,
                execution_environment=tmpl.execution_environment,
                reconciling=True,
                conditions=[_condition("Completed", State.CONDITION_PENDING, now)],
                observed_generation=1,
                index=index,
                retried=0,
                log_uri=log_uri,
            )
            task.etag = _etag(task.uid, 1)
            tasks.append(task)
        plan = self._plan(tmpl, jn, ex_id, task_count, parallelism)
        return execution, tasks, plan

    def _plan(
        self,
        tmpl: run_v2.TaskTemplate,
        jn: names.JobName,
        ex_id: str,
        task_count: int,
        parallelism: int,
    ) -> TaskPlan:
        container = tmpl.containers[0]
        start_error = None
        mapped = next(
            (
                cmd
                for pattern, cmd in self.cloud.image_map.items()
                if fnmatch.fnmatchcase(container.image, pattern)
            ),
            None,
        )
        if mapped is not None:
            argv = [*shlex.split(mapped), *container.args]
        else:
            argv = [*container.command, *container.args]
        if not argv:
            start_error = (
                f"Container {container.name or 'container-0'!r} has no entrypoint: image "
                f"{container.image!r} is not in the emulator's image map "
                "(govctl emulator start --map-image PATTERN=COMMAND) and the job sets no command."
            )
        # Tasks inherit the emulator's environment (PATH, STORAGE_EMULATOR_HOST, ...) under
        # the container's own variables, as a local stand-in for the image's environment.
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        for var in container.env:
            if "value_source" in var:
                start_error = (
                    f"Environment variable {var.name} reads a secret; Secret Manager is not "
                    "emulated, use a plain value."
                )
                continue
            env[var.name] = var.value
        env["CLOUD_RUN_JOB"] = jn.job
        env["CLOUD_RUN_EXECUTION"] = ex_id
        cwd = (
            container.working_dir
            if container.working_dir and os.path.isdir(container.working_dir)
            else None
        )
        return TaskPlan(
            argv=argv,
            env=env,
            task_count=task_count,
            parallelism=parallelism,
            max_retries=tmpl.max_retries,
            timeout=tmpl.timeout.total_seconds(),
            cwd=cwd,
            start_error=start_error,
        )

    # IAM -------------------------------------------------------------------------------------
    def get_iam_policy(
        self, request: iam_policy_pb2.GetIamPolicyRequest, context: grpc.ServicerContext
    ) -> policy_pb2.Policy:
        names.parse_job(request.resource, "resource")
        policies.check_requested_version(request.options.requested_policy_version)
        with self.lock:
            self._job(request.resource)
            current = self.policies.get(request.resource) or policies.empty_policy()
            return policies.for_version(current, request.options.requested_policy_version)

    def set_iam_policy(
        self, request: iam_policy_pb2.SetIamPolicyRequest, context: grpc.ServicerContext
    ) -> policy_pb2.Policy:
        names.parse_job(request.resource, "resource")
        with self.lock:
            self._job(request.resource)
            current = self.policies.get(request.resource) or policies.empty_policy()
            stored = policies.checked_update(current, request.policy)
            self.policies[request.resource] = stored
            self.changed()
            return iam_policy.copy(stored)

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, context: grpc.ServicerContext
    ) -> iam_policy_pb2.TestIamPermissionsResponse:
        names.parse_job(request.resource, "resource")
        for perm in request.permissions:
            if "*" in perm:
                raise invalid_argument(f"Permissions with wildcards are not allowed: {perm!r}")
        with self.lock:
            self._job(request.resource)
        # The emulator's caller owns every project: it holds each Cloud Run permission.
        granted = [p for p in request.permissions if p.startswith("run.")]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=granted)

    # Executions ------------------------------------------------------------------------------
    def get_execution(
        self, request: run_v2.GetExecutionRequest, context: grpc.ServicerContext
    ) -> run_v2.Execution:
        names.check_execution(request.name)
        with self.lock:
            return clone(self._execution(request.name))

    def list_executions(
        self, request: run_v2.ListExecutionsRequest, context: grpc.ServicerContext
    ) -> run_v2.ListExecutionsResponse:
        parent, job_id = names.parse_execution_parent(request.parent)
        with self.lock:
            if job_id == "-":
                prefix = f"{parent}/jobs/"
            else:
                self._job(request.parent)
                prefix = f"{request.parent}/executions/"
            found = [e for n, e in self.executions.items() if n.startswith(prefix)]
            # Newest first, as the console and gcloud show them.
            found.sort(key=lambda e: (e.create_time, e.name), reverse=True)
            items = [clone(e) for e in found]
        chunk, token = rpc.page(items, request.page_size, request.page_token)
        return run_v2.ListExecutionsResponse(executions=chunk, next_page_token=token)

    def delete_execution(
        self, request: run_v2.DeleteExecutionRequest, context: grpc.ServicerContext
    ) -> Any:
        name = names.check_execution(request.name)
        parent = name.split("/jobs/", 1)[0]
        with self.lock:
            ex = clone(self._execution(name))
            self._check_etag(request.etag, ex.etag, name)
            if request.validate_only:
                return self.operations.new(parent, ex, ex, store=False)
        self._cancel_and_wait(name)
        with self.lock:
            ex = clone(self.executions.get(name, ex))
            self._forget_execution(name)
            ex.delete_time = self._now()
            self.changed()
            return self.operations.new(parent, ex, ex)

    def cancel_execution(
        self, request: run_v2.CancelExecutionRequest, context: grpc.ServicerContext
    ) -> Any:
        name = names.check_execution(request.name)
        parent = name.split("/jobs/", 1)[0]
        with self.lock:
            ex = self._execution(name)
            self._check_etag(request.etag, ex.etag, name)
            if "completion_time" in ex:
                raise failed_precondition(f"Execution {name} has already completed.")
            if request.validate_only:
                return self.operations.new(parent, ex, ex, store=False)
            op = self.operations.new(parent, ex)
            self._exec_ops.setdefault(name, []).append((op.name, "cancel"))
            _set_condition(
                ex.conditions,
                _condition(
                    "Completed",
                    State.CONDITION_RECONCILING,
                    self._now(),
                    "The execution is being cancelled.",
                    execution_reason=Cond.ExecutionReason.CANCELLING,
                ),
            )
            self.changed()
        self._cancel_and_wait(name)
        with self.lock:
            return self.operations.get_operation(
                operations_pb2.GetOperationRequest(name=op.name), context
            )

    def _cancel_and_wait(self, ex_name: str) -> None:
        with self.lock:
            runner = self._runners.get(ex_name)
        if runner is not None:
            runner.cancel()
            runner.join(STOP_WAIT)

    def _forget_execution(self, ex_name: str) -> None:
        self.executions.pop(ex_name, None)
        for task in self._tasks_of(ex_name):
            self.tasks.pop(task.name, None)
        for op_name, _ in self._exec_ops.pop(ex_name, []):
            ex = run_v2.Execution(name=ex_name)
            self.operations.finish(
                op_name, ex, error=(code_pb2.ABORTED, "The execution was deleted.")
            )

    # Tasks -----------------------------------------------------------------------------------
    def get_task(
        self, request: run_v2.GetTaskRequest, context: grpc.ServicerContext
    ) -> run_v2.Task:
        names.check_task(request.name)
        with self.lock:
            task = self.tasks.get(request.name)
            if task is None:
                raise not_found(f"Task {request.name} does not exist.")
            return clone(task)

    def list_tasks(
        self, request: run_v2.ListTasksRequest, context: grpc.ServicerContext
    ) -> run_v2.ListTasksResponse:
        names.check_execution(request.parent, "parent")
        with self.lock:
            self._execution(request.parent)
            items = [clone(t) for t in self._tasks_of(request.parent)]
        chunk, token = rpc.page(items, request.page_size, request.page_token)
        return run_v2.ListTasksResponse(tasks=chunk, next_page_token=token)

    # execution progress (called by _Tracker under the lock) -----------------------------------
    def finish_execution(self, ex_name: str, outcome: Outcome) -> None:
        ex = self.executions.get(ex_name)
        self._runners.pop(ex_name, None)
        if ex is None or "completion_time" in ex:
            return
        now = self._now()
        tasks = self._tasks_of(ex_name)
        for task in tasks:
            if "completion_time" not in task:
                # Only reached when the emulator stopped mid-run (or crashed, on load).
                self._end_task(
                    task, ex, now, "cancelled", "The emulator stopped before the task ended."
                )
        ex.running_count = 0
        ex.reconciling = False
        ex.completion_time = now
        ex.update_time = now
        for t in ("ResourcesAvailable", "Started"):
            cond = next((c for c in ex.conditions if c.type_ == t), None)
            if cond is not None and cond.state == State.CONDITION_PENDING:
                _set_condition(ex.conditions, _condition(t, State.CONDITION_SUCCEEDED, now))
        elapsed = (now - ex.create_time).total_seconds()
        status: Any = CompletionStatus.EXECUTION_SUCCEEDED
        error: tuple[int, str] | None = None
        if outcome == "succeeded":
            completed = _condition(
                "Completed",
                State.CONDITION_SUCCEEDED,
                now,
                f"Execution completed successfully in {elapsed:.0f}s.",
            )
        elif outcome == "failed":
            first = next(
                (
                    t
                    for t in tasks
                    if t.last_attempt_result.status.code
                    and not any(
                        c.execution_reason == Cond.ExecutionReason.CANCELLED for c in t.conditions
                    )
                ),
                tasks[0],
            )
            detail = first.last_attempt_result.status.message
            message = (
                f"Task {first.name.rsplit('/', 1)[-1]} failed with message: {detail} "
                f"({ex.failed_count} of {ex.task_count} tasks failed)"
            )
            completed = _condition(
                "Completed",
                State.CONDITION_FAILED,
                now,
                message,
                execution_reason=Cond.ExecutionReason.NON_ZERO_EXIT_CODE,
            )
            status = CompletionStatus.EXECUTION_FAILED
            error = (code_pb2.FAILED_PRECONDITION, message)
        elif outcome == "cancelled":
            completed = _condition(
                "Completed",
                State.CONDITION_FAILED,
                now,
                "The execution was cancelled.",
                execution_reason=Cond.ExecutionReason.CANCELLED,
            )
            status = CompletionStatus.EXECUTION_CANCELLED
        else:
            message = (
                "The emulator stopped while this execution was running; its tasks were cancelled."
            )
            completed = _condition(
                "Completed",
                State.CONDITION_FAILED,
                now,
                message,
                execution_reason=Cond.ExecutionReason.CANCELLED,
            )
            status = CompletionStatus.EXECUTION_FAILED
            error = (code_pb2.ABORTED, message)
        _set_condition(ex.conditions, completed)
        job = self.jobs.get(names.job_of(ex_name))
        if job is not None and job.latest_created_execution.name == ex_name:
            job.latest_created_execution.completion_time = now
            job.latest_created_execution.completion_status = status
        for op_name, kind in self._exec_ops.pop(ex_name, []):
            # A cancelled execution still answers RunJob with the execution, not an error.
            self.operations.finish(op_name, ex, ex, error=error if kind == "run" else None)
        self.changed()

    def _end_task(
        self, task: run_v2.Task, ex: run_v2.Execution, now: datetime, how: str, message: str
    ) -> None:
        task.completion_time = now
        task.update_time = now
        task.reconciling = False
        if how == "succeeded":
            ex.succeeded_count += 1
            cond = _condition("Completed", State.CONDITION_SUCCEEDED, now)
        elif how == "failed":
            ex.failed_count += 1
            cond = _condition("Completed", State.CONDITION_FAILED, now, message)
        else:
            ex.cancelled_count += 1
            cond = _condition(
                "Completed",
                State.CONDITION_FAILED,
                now,
                message,
                execution_reason=Cond.ExecutionReason.CANCELLED,
            )
        _set_condition(task.conditions, cond)

    # gRPC ------------------------------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        op = operations_pb2.Operation
        jobs = rpc.service(
            "google.cloud.run.v2.Jobs",
            {
                "CreateJob": Method(self.create_job, run_v2.CreateJobRequest, op),
                "GetJob": Method(self.get_job, run_v2.GetJobRequest, run_v2.Job),
                "ListJobs": Method(self.list_jobs, run_v2.ListJobsRequest, run_v2.ListJobsResponse),
                "UpdateJob": Method(self.update_job, run_v2.UpdateJobRequest, op),
                "DeleteJob": Method(self.delete_job, run_v2.DeleteJobRequest, op),
                "RunJob": Method(self.run_job_rpc, run_v2.RunJobRequest, op),
                **iam_policy.methods(
                    self.get_iam_policy, self.set_iam_policy, self.test_iam_permissions
                ),
            },
        )
        executions = rpc.service(
            "google.cloud.run.v2.Executions",
            {
                "GetExecution": Method(
                    self.get_execution, run_v2.GetExecutionRequest, run_v2.Execution
                ),
                "ListExecutions": Method(
                    self.list_executions,
                    run_v2.ListExecutionsRequest,
                    run_v2.ListExecutionsResponse,
                ),
                "DeleteExecution": Method(self.delete_execution, run_v2.DeleteExecutionRequest, op),
                "CancelExecution": Method(self.cancel_execution, run_v2.CancelExecutionRequest, op),
            },
        )
        tasks = rpc.service(
            "google.cloud.run.v2.Tasks",
            {
                "GetTask": Method(self.get_task, run_v2.GetTaskRequest, run_v2.Task),
                "ListTasks": Method(
                    self.list_tasks, run_v2.ListTasksRequest, run_v2.ListTasksResponse
                ),
            },
        )
        return [jobs, executions, tasks, self.operations.handler()]

    # lifecycle and persistence ---------------------------------------------------------------
    def stop(self) -> None:
        with self.lock:
            self._stopping = True
            runners = list(self._runners.values())
        self.operations.stopping.set()
        self.operations.wake()
        for runner in runners:
            runner.cancel(interrupted=True)
        for runner in runners:
            runner.join(3.0)
        with self.lock:
            for ex_name in list(self.executions):
                self.finish_execution(ex_name, "interrupted")

    def dump(self) -> Any:
        return {
            "jobs": [to_jsonable(j) for j in self.jobs.values()],
            "executions": [to_jsonable(e) for e in self.executions.values()],
            "tasks": [to_jsonable(t) for t in self.tasks.values()],
            "policies": {name: to_jsonable(p) for name, p in self.policies.items()},
            "operations": self.operations.dump(),
            "execution_operations": {
                k: [list(v) for v in ops] for k, ops in self._exec_ops.items()
            },
        }

    def load(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        with self.lock:
            self.jobs = {
                j.name: j for j in (from_jsonable(run_v2.Job, d) for d in data.get("jobs", []))
            }
            self.executions = {
                e.name: e
                for e in (from_jsonable(run_v2.Execution, d) for d in data.get("executions", []))
            }
            self.tasks = {
                t.name: t for t in (from_jsonable(run_v2.Task, d) for d in data.get("tasks", []))
            }
            self.policies = {
                name: from_jsonable(policy_pb2.Policy, d)
                for name, d in data.get("policies", {}).items()
            }
            self.operations.load(data.get("operations", []))
            self._exec_ops = {
                k: [(op, kind) for op, kind in ops]
                for k, ops in data.get("execution_operations", {}).items()
            }
            # Executions that were running when the emulator went away cannot resume.
            for ex_name in list(self.executions):
                self.finish_execution(ex_name, "interrupted")


class _Tracker:
    """Turns an execution runner's reports into Execution/Task fields and log entries."""

    def __init__(self, service: RunService, execution: str, job: names.JobName) -> None:
        self.svc = service
        self.execution = execution
        self.ex_id = execution.rsplit("/", 1)[-1]
        self.job = job

    def _state(self, index: int) -> tuple[run_v2.Execution, run_v2.Task] | None:
        ex = self.svc.executions.get(self.execution)
        task = self.svc.tasks.get(f"{self.execution}/tasks/{names.task_id(self.ex_id, index)}")
        if ex is None or task is None:
            return None
        return ex, task

    def _touched(self, ex: run_v2.Execution, now: datetime) -> None:
        ex.update_time = now
        for op_name, _ in self.svc._exec_ops.get(self.execution, []):
            self.svc.operations.update_metadata(op_name, ex)
        self.svc.changed()

    def attempt_started(self, index: int, attempt: int) -> None:
        with self.svc.lock:
            found = self._state(index)
            if found is None:
                return
            ex, task = found
            now = self.svc._now()
            if "start_time" not in ex:
                ex.start_time = now
                _set_condition(
                    ex.conditions, _condition("ResourcesAvailable", State.CONDITION_SUCCEEDED, now)
                )
                _set_condition(ex.conditions, _condition("Started", State.CONDITION_SUCCEEDED, now))
                _set_condition(
                    ex.conditions, _condition("Completed", State.CONDITION_RECONCILING, now)
                )
            ex.running_count += 1
            task.start_time = now
            task.update_time = now
            if "scheduled_time" not in task:
                task.scheduled_time = now
            _set_condition(
                task.conditions,
                _condition(
                    "Completed", State.CONDITION_RECONCILING, now, f"Attempt {attempt} is running."
                ),
            )
            self._touched(ex, now)

    def attempt_finished(
        self, index: int, attempt: int, result: AttemptResult, will_retry: bool
    ) -> None:
        with self.svc.lock:
            found = self._state(index)
            if found is None:
                return
            ex, task = found
            now = self.svc._now()
            ex.running_count = max(0, ex.running_count - 1)
            code, message = _attempt_status(result, f"{int(task.timeout.total_seconds())}s")
            task.last_attempt_result = run_v2.TaskAttemptResult(
                status={"code": code, "message": message},
                exit_code=result.exit_code,
                term_signal=result.term_signal,
            )
            if result.cancelled:
                pass  # task_cancelled follows
            elif result.ok:
                self.svc._end_task(task, ex, now, "succeeded", "")
            elif will_retry:
                task.retried += 1
                ex.retried_count += 1
                _set_condition(
                    task.conditions,
                    _condition(
                        "Completed",
                        State.CONDITION_RECONCILING,
                        now,
                        f"Attempt {attempt} failed: {message} Retrying.",
                    ),
                )
            else:
                self.svc._end_task(task, ex, now, "failed", message)
            self._touched(ex, now)

    def task_cancelled(self, index: int) -> None:
        with self.svc.lock:
            found = self._state(index)
            if found is None or "completion_time" in found[1]:
                return
            ex, task = found
            now = self.svc._now()
            self.svc._end_task(task, ex, now, "cancelled", "The task was cancelled.")
            self._touched(ex, now)

    def log_line(self, index: int, attempt: int, stream: Stream, line: str) -> None:
        try:
            logging_svc = self.svc.cloud.service("logging")
        except LookupError:
            return  # the logging service is not part of this emulator build
        entry = task_log_entry(
            project=self.job.project,
            location=self.job.location,
            job=self.job.job,
            execution=self.ex_id,
            task_index=index,
            attempt=attempt,
            stream=stream,
            line=line,
            now=self.svc._now(),
        )
        with contextlib.suppress(Exception):
            logging_svc.write_entries([entry])

    def execution_finished(self, outcome: Outcome) -> None:
        with self.svc.lock:
            self.svc.finish_execution(self.execution, outcome)


def _attempt_status(result: AttemptResult, timeout_text: str) -> tuple[int, str]:
    if result.start_error is not None:
        return code_pb2.FAILED_PRECONDITION, result.start_error
    if result.cancelled:
        return code_pb2.CANCELLED, "The task was cancelled."
    if result.timed_out:
        return code_pb2.DEADLINE_EXCEEDED, f"The configured timeout was reached ({timeout_text})."
    if result.term_signal:
        return code_pb2.UNKNOWN, f"The container was terminated by signal {result.term_signal}."
    if result.exit_code != 0:
        return code_pb2.UNKNOWN, f"The container exited with an exit code of {result.exit_code}."
    return code_pb2.OK, ""
