"""Cloud Run Admin v2 Jobs: create, read, update, delete, run, and the job's IAM policy.

See docs/emulator/run.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import grpc
from google.cloud import run_v2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.rpc import invalid_argument, paged
from govctl.emulator.run import names, validate
from govctl.emulator.run.executions import ExecutionsRpcs
from govctl.emulator.run.resources import PRINCIPAL, State, condition, new_etag
from govctl.emulator.store import clone


class JobsRpcs(ExecutionsRpcs):
    def jobs_rpcs(self) -> Bound:
        return gapic_api("google.cloud.run_v2.services.jobs").bind(
            {
                "CreateJob": self.create_job,
                "GetJob": self.get_job,
                "ListJobs": self.list_jobs,
                "UpdateJob": self.update_job,
                "DeleteJob": self.delete_job,
                "RunJob": self.run_job_rpc,
                **self.policies.handlers(),
            }
        )

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
        job.terminal_condition = condition("Ready", State.CONDITION_SUCCEEDED, now)
        job.etag = new_etag(job.uid, job.generation)

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
            self.jobs.check_absent(name)
            self._finish_job_fields(job, self.now(), None)
            return self._store(str(parent), job, request.validate_only)

    def _store(self, parent: str, job: run_v2.Job, validate_only: bool) -> Any:
        """Keep a created or updated job (unless validate_only) and answer with its operation."""
        if not validate_only:
            self.jobs.put(job)
            self.changed()
        return self.operations.finished(parent, job, store=not validate_only)

    def get_job(self, request: run_v2.GetJobRequest, context: grpc.ServicerContext) -> run_v2.Job:
        names.parse_job(request.name)
        with self.lock:
            return clone(self.require_job(request.name))

    def list_jobs(
        self, request: run_v2.ListJobsRequest, context: grpc.ServicerContext
    ) -> run_v2.ListJobsResponse:
        parent = names.parse_parent(request.parent)
        with self.lock:
            jobs = [clone(j) for j in self.jobs.under(f"{parent}/jobs/")]
        return paged(run_v2.ListJobsResponse, "jobs", jobs, request)

    def update_job(self, request: run_v2.UpdateJobRequest, context: grpc.ServicerContext) -> Any:
        name = str(names.parse_job(request.job.name, "job.name"))
        parent = name.rsplit("/jobs/", 1)[0]
        job = self._prepare_job(request.job)
        with self.lock:
            existing = self.jobs.get(name)
            if existing is None and not request.allow_missing:
                self.require_job(name)
            if existing is not None:
                self.check_etag(request.job.etag, existing.etag, name)
            self._finish_job_fields(job, self.now(), existing)
            return self._store(parent, job, request.validate_only)

    def delete_job(self, request: run_v2.DeleteJobRequest, context: grpc.ServicerContext) -> Any:
        name = str(names.parse_job(request.name))
        parent = name.rsplit("/jobs/", 1)[0]
        with self.lock:
            job = clone(self.require_job(name))
            self.check_etag(request.etag, job.etag, name)
            if request.validate_only:
                return self.operations.finished(parent, job, store=False)
            doomed = [e.name for e in self.executions if names.job_of(e.name) == name]
        # Deleting a job deletes its executions; running ones are cancelled first.
        for ex_name in doomed:
            self._cancel_and_wait(ex_name)
        with self.lock:
            job = self.jobs.items.pop(name, job)
            for ex_name in doomed:
                self._forget_execution(ex_name)
            self.policies.forget(name)
            job.delete_time = self.now()
            self.changed()
            return self.operations.finished(parent, job)

    # RunJob ----------------------------------------------------------------------------------
    def run_job_rpc(self, request: run_v2.RunJobRequest, context: grpc.ServicerContext) -> Any:
        overrides = request.overrides if "overrides" in request else None
        _, op = self.start_execution(request.name, overrides, request.etag, request.validate_only)
        return op
