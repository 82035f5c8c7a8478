"""Cloud Run Admin v2 Executions and Tasks, and how RunJob starts an execution.

An execution's tasks are local processes (:mod:`.executor`); :mod:`.progress` turns what they
do into Execution and Task fields. See docs/emulator/run.md for the fidelity of every RPC.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import uuid
from typing import Any
from urllib.parse import quote

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.rpc import failed_precondition, paged, unavailable
from govctl.emulator.run import names, validate
from govctl.emulator.run.executor import ExecutionRunner, TaskPlan
from govctl.emulator.run.progress import Tracker
from govctl.emulator.run.resources import (
    PRINCIPAL,
    CompletionStatus,
    Cond,
    RunResources,
    State,
    condition,
    new_etag,
    set_condition,
)
from govctl.emulator.run.sandbox import confine
from govctl.emulator.store import clone

# How long CancelExecution / DeleteJob wait for killed tasks before answering.
STOP_WAIT = 5.0
# The task condition's reason when a secret could not be read at start: Condition.CommonReason
# SECRETS_ACCESS_CHECK_FAILED, "At least one Access check on secrets failed"
# (google/cloud/run/v2/condition.proto).
SECRETS_ACCESS_CHECK_FAILED = "SECRETS_ACCESS_CHECK_FAILED"


def logs_explorer_uri(project: str, location: str, job: str, execution: str) -> str:
    query = (
        f'resource.type="cloud_run_job"\nresource.labels.job_name="{job}"\n'
        f'resource.labels.location="{location}"\n'
        f'labels."run.googleapis.com/execution_name"="{execution}"'
    )
    return (
        f"https://console.cloud.google.com/logs/viewer?project={project}"
        f"&advancedFilter={quote(query, safe='')}"
    )


# What a task inherits from the emulator's own environment: what a container image's base
# layer would set. Nothing else, above all no credentials (GOOGLE_APPLICATION_CREDENTIALS,
# CLOUDSDK_*, ...): a task must reach this cloud, never the caller's.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP")


def task_environment() -> dict[str, str]:
    """The environment every task starts from, before the job's own variables."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith("LC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ExecutionsRpcs(RunResources):
    def executions_rpcs(self) -> list[Bound]:
        executions = gapic_api("google.cloud.run_v2.services.executions").bind(
            {
                "GetExecution": self.get_execution,
                "ListExecutions": self.list_executions,
                "DeleteExecution": self.delete_execution,
                "CancelExecution": self.cancel_execution,
            }
        )
        tasks = gapic_api("google.cloud.run_v2.services.tasks").bind(
            {"GetTask": self.get_task, "ListTasks": self.list_tasks}
        )
        return [executions, tasks]

    # starting an execution (RunJob) ----------------------------------------
    def start_execution(
        self,
        job_name: str,
        overrides: run_v2.RunJobRequest.Overrides | None,
        etag: str,
        validate_only: bool,
    ) -> tuple[run_v2.Execution, operations_pb2.Operation]:
        jn = names.parse_job(job_name)
        parent = str(jn.parent)
        with self.lock:
            if self.closed:
                raise unavailable("The emulator is stopping.")
            job = self.require_job(job_name)
            self.check_etag(etag, job.etag, job_name)
            if overrides is not None:
                validate.validate_overrides(overrides, job)
            execution, tasks, plan = self._new_execution(job, jn, overrides)
            if validate_only:
                return execution, self.operations.finished(parent, execution, store=False)
            self.executions.put(execution)
            for task in tasks:
                self.tasks.put(task)
            job.execution_count += 1
            job.latest_created_execution = run_v2.ExecutionReference(
                name=execution.name,
                create_time=execution.create_time,
                completion_status=CompletionStatus.EXECUTION_RUNNING,
            )
            op = self.operations.start(parent, execution)
            self.execution_ops[execution.name] = [(op.name, "run")]
            runner = ExecutionRunner(
                execution.name, plan, Tracker(self, execution.name, jn), self.cloud.children
            )
            self.runners[execution.name] = runner
            self.changed()
            runner.start()
            return clone(execution), op

    def _new_execution(
        self,
        job: run_v2.Job,
        jn: names.JobName,
        overrides: run_v2.RunJobRequest.Overrides | None,
    ) -> tuple[run_v2.Execution, list[run_v2.Task], TaskPlan]:
        now = self.now()
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
        log_uri = logs_explorer_uri(jn.project, jn.location, jn.job, ex_id)
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
                condition("ResourcesAvailable", State.CONDITION_PENDING, now),
                condition("Started", State.CONDITION_PENDING, now),
                condition("Completed", State.CONDITION_PENDING, now),
            ],
            observed_generation=1,
            log_uri=log_uri,
        )
        execution.etag = new_etag(execution.uid, 1)
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
                conditions=[condition("Completed", State.CONDITION_PENDING, now)],
                observed_generation=1,
                index=index,
                retried=0,
                log_uri=log_uri,
            )
            task.etag = new_etag(task.uid, 1)
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
        command = shlex.split(mapped) if mapped is not None else list(container.command)
        argv = [*command, *container.args]
        if mapped is None and not self.cloud.run_unmapped_images:
            # Whoever reaches the emulator's port could otherwise run any command here.
            start_error = (
                f"Image '{container.image}' not found: it matches no entry of the emulator's "
                "image map. Start the emulator with --map-image PATTERN=COMMAND, or with "
                "--run-unmapped-images to run the job's own command on this host."
            )
        elif not argv:
            start_error = (
                f"Container {container.name or 'container-0'!r} has no entrypoint: image "
                f"{container.image!r} is not in the emulator's image map "
                "(govctl emulator start --map-image PATTERN=COMMAND) and the job sets no command."
            )
        env = task_environment()
        start_reason = None
        for var in container.env:
            if "value_source" in var:
                try:
                    env[var.name] = self._secret_value(var, tmpl, jn)
                except LookupError as err:
                    if start_error is None:
                        start_error, start_reason = str(err), SECRETS_ACCESS_CHECK_FAILED
                continue
            env[var.name] = var.value
        env.update(self.cloud.endpoints)  # not even the job's own env may point elsewhere
        env["CLOUD_RUN_JOB"] = jn.job
        env["CLOUD_RUN_EXECUTION"] = ex_id
        cwd = sandbox = None
        if mapped is not None:  # only the installed command, on nothing the caller chose
            sandbox, refusal = confine(
                container.image, command, argv, [v.name for v in container.env], env,
                container.working_dir,
            )  # fmt: skip
            start_error = start_error or refusal
        elif container.working_dir and os.path.isdir(container.working_dir):
            cwd = container.working_dir  # --run-unmapped-images: the caller's own command
        return TaskPlan(
            argv=argv,
            env=env,
            task_count=task_count,
            parallelism=parallelism,
            max_retries=tmpl.max_retries,
            timeout=tmpl.timeout.total_seconds(),
            cwd=cwd,
            sandbox=sandbox,
            start_error=start_error,
            start_reason=start_reason,
            memory_limit=validate.parse_memory(
                container.resources.limits.get("memory", validate.DEFAULT_MEMORY)
            ),
        )

    def _secret_value(
        self, var: run_v2.EnvVar, tmpl: run_v2.TaskTemplate, jn: names.JobName
    ) -> str:
        """The value of a ``secret_key_ref`` variable, read as the task's service account.

        Cloud Run reads secrets when an instance starts, so a missing secret, version or
        access fails every task at start with Secret Manager's reason (LookupError here).
        """
        ref = var.value_source.secret_key_ref
        account = tmpl.service_account or f"{jn.project}-compute@developer.gserviceaccount.com"
        try:
            secrets = self.cloud.service("secretmanager")
        except LookupError:
            raise LookupError(
                f"Environment variable {var.name} reads a secret; Secret Manager is not running."
            ) from None
        try:
            value: str = secrets.resolve(
                jn.project, ref.secret, ref.version, f"serviceAccount:{account}"
            )
        except LookupError as err:  # Secret Manager's reason, as Cloud Run shows it
            raise LookupError(f"Environment variable {var.name}: {err}") from None
        return value

    # Executions ------------------------------------------------------------------------------
    def get_execution(
        self, request: run_v2.GetExecutionRequest, context: grpc.ServicerContext
    ) -> run_v2.Execution:
        names.check_execution(request.name)
        with self.lock:
            return clone(self.require_execution(request.name))

    def list_executions(
        self, request: run_v2.ListExecutionsRequest, context: grpc.ServicerContext
    ) -> run_v2.ListExecutionsResponse:
        parent, job_id = names.parse_execution_parent(request.parent)
        with self.lock:
            if job_id == "-":
                prefix = f"{parent}/jobs/"
            else:
                self.require_job(request.parent)
                prefix = f"{request.parent}/executions/"
            found = self.executions.under(prefix)
            # Newest first, as the console and gcloud show them.
            found.sort(key=lambda e: (e.create_time, e.name), reverse=True)
            items = [clone(e) for e in found]
        return paged(run_v2.ListExecutionsResponse, "executions", items, request)

    def delete_execution(
        self, request: run_v2.DeleteExecutionRequest, context: grpc.ServicerContext
    ) -> Any:
        with self.lock:
            name, parent, stored = self._checked_execution(request)
            ex = clone(stored)
            if request.validate_only:
                return self.operations.finished(parent, ex, store=False)
        self._cancel_and_wait(name)
        with self.lock:
            current = self.executions.get(name)
            ex = clone(ex if current is None else current)
            self._forget_execution(name)
            ex.delete_time = self.now()
            self.changed()
            return self.operations.finished(parent, ex)

    def cancel_execution(
        self, request: run_v2.CancelExecutionRequest, context: grpc.ServicerContext
    ) -> Any:
        with self.lock:
            name, parent, ex = self._checked_execution(request)
            if "completion_time" in ex:
                raise failed_precondition(f"Execution {name} has already completed.")
            if request.validate_only:
                return self.operations.finished(parent, ex, store=False)
            op = self.operations.start(parent, ex)
            self.execution_ops.setdefault(name, []).append((op.name, "cancel"))
            set_condition(
                ex.conditions,
                condition(
                    "Completed",
                    State.CONDITION_RECONCILING,
                    self.now(),
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

    def _checked_execution(self, request: Any) -> tuple[str, str, run_v2.Execution]:
        """(name, parent, the stored execution) of a Delete/CancelExecution request whose
        etag matches (lock held)."""
        name = names.check_execution(request.name)
        ex = self.require_execution(name)
        self.check_etag(request.etag, ex.etag, name)
        return name, name.split("/jobs/", 1)[0], ex

    def _cancel_and_wait(self, ex_name: str) -> None:
        with self.lock:
            runner = self.runners.get(ex_name)
        if runner is not None:
            runner.cancel()
            runner.join(STOP_WAIT)

    def _forget_execution(self, ex_name: str) -> None:
        self.executions.discard(ex_name)
        for task in self.tasks_of(ex_name):
            self.tasks.discard(task.name)
        for op_name, _ in self.execution_ops.pop(ex_name, []):
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
            return clone(self.tasks.require(request.name))

    def list_tasks(
        self, request: run_v2.ListTasksRequest, context: grpc.ServicerContext
    ) -> run_v2.ListTasksResponse:
        names.check_execution(request.parent, "parent")
        with self.lock:
            self.require_execution(request.parent)
            items = [clone(t) for t in self.tasks_of(request.parent)]
        return paged(run_v2.ListTasksResponse, "tasks", items, request)
