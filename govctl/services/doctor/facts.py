"""Every read `govctl doctor` makes, started at once on a thread pool."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from govctl import config
from govctl.gcp import billing_info, executions, iam, inspect, jobs, scheduler, services
from govctl.services import apis as needed
from govctl.services import digests

RECENT_EXECUTIONS = 20
# What deploying needs on the project (run jobs, scheduler jobs) and the role that grants it.
DEPLOY_PERMISSIONS = {
    "run.jobs.create": "roles/run.developer",
    "run.jobs.update": "roles/run.developer",
    "run.jobs.setIamPolicy": "roles/run.admin",
    "cloudscheduler.jobs.create": "roles/cloudscheduler.admin",
    "cloudscheduler.jobs.update": "roles/cloudscheduler.admin",
}


def _deploy_plan(cfg: config.Config) -> Any:
    from govctl.services.doctor import drift  # which reads Facts: imported once both exist

    return drift.deploy_plan(cfg)


class Facts:
    """Every read doctor makes, started at once on a thread pool; ``get`` waits for one and
    re-raises its :class:`GovctlError`, so a check can report it as its evidence."""

    def __init__(self, cfg: config.Config, pool: ThreadPoolExecutor, project: Any = None) -> None:
        p = cfg.require_project()
        sa = cfg.job.service_account
        readers: dict[str, Callable[[], Any]] = {
            "caller": iam.caller,
            "project": (lambda: project) if project is not None else lambda: inspect.project(p),
            "billing": lambda: billing_info.project_billing(p),
            "apis": lambda: services.enabled(p, needed.names(cfg)),
            "deploy_permissions": lambda: iam.test_project(p, DEPLOY_PERMISSIONS),
            "service_account": lambda: iam.service_account(p, sa),
            "project_policy": lambda: iam.project_policy(p),
            "job": lambda: jobs.get_job(cfg.job_path),
            "job_policy": lambda: iam.job_policy(cfg.job_path),
            "scheduler": lambda: scheduler.get(cfg.schedule_path),
            "executions": lambda: executions.list_for_job(cfg.job_path, RECENT_EXECUTIONS),
            # From the job's summary: no listing of the bucket unless it has none yet.
            "bucket": lambda: digests.read(p, cfg.bucket),
            "deploy_plan": lambda: _deploy_plan(cfg),
        }
        self._futures: dict[str, Future[Any]] = {k: pool.submit(f) for k, f in readers.items()}

    def get(self, key: str) -> Any:
        return self._futures[key].result()
