"""`govctl run`: start an execution of the deployed job with the operator's additions.

Cloud Run's ``args`` override REPLACES the container's argument list, so
``gcloud run jobs execute --args=--limit=10`` silently drops what the job was deployed
with. We read the deployed job's own arguments and append to them; for
``python -m ingestion`` (argparse) a later ``--limit`` wins over an earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from govctl.gcp import executions
from govctl.gcp.executions import Execution, Overrides


@dataclass(frozen=True)
class RunRequest:
    limit: int | None = None
    force: bool = False
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    tasks: int | None = None
    task_timeout: timedelta | None = None


def extra_args(request: RunRequest) -> list[str]:
    extra: list[str] = []
    if request.limit is not None:
        extra += ["--limit", str(request.limit)]
    if request.force:
        extra.append("--force")
    return extra + list(request.args)


def build_overrides(job_args: Sequence[str], request: RunRequest) -> Overrides:
    """The overrides of one run: the job's own arguments followed by ours."""
    extra = extra_args(request)
    return Overrides(
        args=[*job_args, *extra] if extra else None,
        env=dict(request.env or {}),
        task_count=request.tasks,
        timeout_s=int(request.task_timeout.total_seconds()) if request.task_timeout else None,
    )


def start(job_path: str, request: RunRequest) -> Execution:
    overrides = build_overrides(_job_args(job_path, request), request)
    return executions.run(job_path, overrides if overrides else None)


def _job_args(job_path: str, request: RunRequest) -> tuple[str, ...]:
    if not extra_args(request):
        return ()  # nothing to append: no need to read the job (nor the right to)
    return executions.job_container(job_path).args
