"""Helpers for the Cloud Run conformance tests (official clients only)."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

from google.api_core.future import polling
from google.cloud import run_v2

PARENT = "projects/demo-project/locations/europe-west2"
# Poll LROs quickly: the client's default first delay is 1 s.
FAST_POLL = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.2, multiplier=1.5)


def job_spec(
    code: str = "print('hello')",
    *,
    task_count: int = 1,
    parallelism: int = 0,
    max_retries: int = 0,
    timeout: timedelta | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    image: str = "europe-docker.pkg.dev/demo/test/job:latest",
) -> run_v2.Job:
    limits = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container = run_v2.Container(
        image=image,
        command=[sys.executable, "-c", code],
        args=args or [],
        env=[run_v2.EnvVar(name=k, value=v) for k, v in (env or {}).items()],
        resources=run_v2.ResourceRequirements(limits=limits),
    )
    task = run_v2.TaskTemplate(containers=[container], max_retries=max_retries)
    if timeout is not None:
        task.timeout = timeout
    return run_v2.Job(
        template=run_v2.ExecutionTemplate(
            task_count=task_count, parallelism=parallelism, template=task
        )
    )


def create(jobs: run_v2.JobsClient, job_id: str, job: run_v2.Job | None = None) -> run_v2.Job:
    op = jobs.create_job(parent=PARENT, job_id=job_id, job=job or job_spec())
    return op.result(polling=FAST_POLL)  # type: ignore[no-any-return]


def wait_execution(
    executions: run_v2.ExecutionsClient, name: str, timeout: float = 15.0
) -> run_v2.Execution:
    deadline = time.monotonic() + timeout
    while True:
        ex = executions.get_execution(name=name)
        if "completion_time" in ex:
            return ex
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {name} still running: {ex}")
        time.sleep(0.05)


def condition(resource: Any, type_: str) -> run_v2.Condition:
    return next(c for c in resource.conditions if c.type_ == type_)
