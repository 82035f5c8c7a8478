"""Cloud Run jobs as govctl sees them: the fields govctl manages, read and written with etags.

``JobSpec`` holds exactly what ``govctl deploy`` manages; every other field of a job (volumes,
annotations, other labels, …) is kept as it is on update, because
updates are read-modify-write on the stored job, sent with the etag that was read, so a
change made meanwhile is refused by Cloud Run (ABORTED) instead of overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from govctl import validate
from govctl.errors import CloudError, NotFound, UsageError
from govctl.gcp import clients, operations
from govctl.gcp.errors import translate

if TYPE_CHECKING:
    from google.cloud import run_v2

MANAGED_LABELS = ("managed-by", "commit-sha")
CONCURRENT_FIX = (
    "someone changed it since govctl read it; rerun `govctl deploy` to see the new plan"
)


def job_id(path: str) -> str:
    """The job's id in its resource name ``projects/P/locations/R/jobs/ID`` (the client
    library's own parser; a name of another form is returned as it is)."""
    from google.cloud import run_v2

    return run_v2.JobsClient.parse_job_path(path).get("job", path)


@dataclass(frozen=True)
class JobSpec:
    """The fields of a Cloud Run job that govctl manages (+ etag and update time when read)."""

    image: str
    cpu: int | str
    memory_mib: int | str
    task_timeout: timedelta
    max_retries: int
    tasks: int
    parallelism: int
    service_account: str
    env: dict[str, str]
    args: tuple[str, ...]
    labels: dict[str, str]
    # NAME -> "secret-id[:version]": variables Cloud Run reads from Secret Manager (references
    # only; govctl never holds a value).
    secrets: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    update_time: datetime | None = None


@dataclass(frozen=True)
class Policy:
    """A job's IAM policy: role -> members, and the etag to write it back with."""

    bindings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    etag: bytes = b""


def _cpu(value: str) -> int | str:
    try:
        return validate.cpu(value)
    except UsageError:
        return value  # a form govctl does not write: shown as is, so it differs from the plan


def _memory(value: str) -> int | str:
    try:
        return validate.memory_mib(value)
    except UsageError:
        return value


def _spec(job: run_v2.Job) -> JobSpec:
    task = job.template.template
    container = task.containers[0] if task.containers else None
    limits = dict(container.resources.limits) if container else {}
    return JobSpec(
        image=container.image if container else "",
        cpu=_cpu(limits.get("cpu", "")),
        memory_mib=_memory(limits.get("memory", "")),
        task_timeout=task.timeout if "timeout" in task else timedelta(0),
        max_retries=task.max_retries,
        tasks=job.template.task_count,
        parallelism=job.template.parallelism,
        service_account=task.service_account,
        env={e.name: e.value for e in container.env if not e.value_source} if container else {},
        args=tuple(container.args) if container else (),
        labels=dict(job.labels),
        secrets=_secret_refs(container.env) if container else {},
        etag=job.etag,
        update_time=job.update_time,
    )


def _secret_refs(env: Any) -> dict[str, str]:
    refs = {}
    for e in env:
        if e.value_source:
            ref = e.value_source.secret_key_ref
            refs[e.name] = validate.format_secret_ref(ref.secret, ref.version or "latest")
    return refs


def get_job(name: str) -> JobSpec | None:
    """The job's managed fields, or None when there is no such job."""
    try:
        with translate(f"get Cloud Run job {name}"):
            return _spec(clients.jobs().get_job(name=name))
    except NotFound:
        return None


def _apply(job: run_v2.Job, spec: JobSpec) -> None:
    """Write ``spec`` into ``job``, keeping every field govctl does not manage."""
    from google.cloud import run_v2

    task = job.template.template
    if not task.containers:
        task.containers.append(run_v2.Container())
    container = task.containers[0]
    container.image = spec.image
    container.resources.limits["cpu"] = str(spec.cpu)
    memory = spec.memory_mib
    container.resources.limits["memory"] = (
        validate.format_memory(memory) if isinstance(memory, int) else memory
    )
    container.args = list(spec.args)
    # Every variable is govctl's: the plain ones from [job] env, the secret references from
    # [job] secrets (Cloud Run reads the value when a task starts).
    refs = []
    for name, ref in spec.secrets.items():
        secret, _, version = ref.partition(":")
        source = run_v2.EnvVarSource(
            secret_key_ref=run_v2.SecretKeySelector(secret=secret, version=version or "latest")
        )
        refs.append(run_v2.EnvVar(name=name, value_source=source))
    container.env = [run_v2.EnvVar(name=k, value=v) for k, v in spec.env.items()] + refs
    task.timeout = spec.task_timeout
    task.max_retries = spec.max_retries
    task.service_account = spec.service_account
    job.template.task_count = spec.tasks
    job.template.parallelism = spec.parallelism
    for key in MANAGED_LABELS:
        if key in spec.labels:
            job.labels[key] = spec.labels[key]
        elif key in job.labels:
            del job.labels[key]


def _operation_result(operation: Any) -> run_v2.Job:
    job: run_v2.Job = operations.result(operation)
    return job


def create_job(parent: str, job_id: str, spec: JobSpec) -> JobSpec:
    from google.cloud import run_v2

    job = run_v2.Job()
    _apply(job, spec)
    what = f"create Cloud Run job {parent}/jobs/{job_id}"
    try:
        with translate(what):
            return _spec(
                _operation_result(clients.jobs().create_job(parent=parent, job=job, job_id=job_id))
            )
    except CloudError as err:
        if err.reason == "ALREADY_EXISTS":
            raise CloudError(
                f"{what}: it was created meanwhile", fix=CONCURRENT_FIX, reason=err.reason
            ) from None
        raise


def update_job(name: str, spec: JobSpec, etag: str) -> JobSpec:
    """Read-modify-write: refused when the job's etag is no longer ``etag``."""

    client = clients.jobs()
    what = f"update Cloud Run job {name}"
    with translate(what):
        job = client.get_job(name=name)
    if job.etag != etag:
        raise CloudError(f"{what}: it changed since the plan was made", fix=CONCURRENT_FIX)
    _apply(job, spec)
    job.etag = etag  # Cloud Run refuses the update (ABORTED) if it changed since the read
    try:
        with translate(what):
            return _spec(_operation_result(client.update_job(job=job)))
    except CloudError as err:
        if err.reason == "ABORTED":
            raise CloudError(f"{what}: it changed since the plan was made",
                             fix=CONCURRENT_FIX, reason=err.reason) from None  # fmt: skip
        raise


def delete_job(name: str) -> None:
    """Delete the job, its executions and its IAM policy with it (`gcloud run jobs delete`),
    and wait for the operation; NotFound when it is gone already."""
    with translate(f"delete Cloud Run job {job_id(name)}"):
        operations.result(clients.jobs().delete_job(name=name))


# IAM -------------------------------------------------------------------------------------


def get_policy(name: str) -> Policy:
    with translate(f"get the IAM policy of Cloud Run job {name}"):
        policy = clients.jobs().get_iam_policy(request={"resource": name})
    bindings: dict[str, tuple[str, ...]] = {}
    for b in policy.bindings:
        if b.HasField("condition"):
            continue  # conditional grants are not govctl's to manage or count
        bindings[b.role] = tuple(sorted({*bindings.get(b.role, ()), *b.members}))
    return Policy(bindings=bindings, etag=policy.etag)


def add_member(name: str, role: str, member: str, etag: bytes | None) -> Policy:
    """Grant ``role`` to ``member`` on the job, read-modify-write with the policy's etag.

    ``etag`` is the one the plan saw (None: the job did not exist then, so any policy is new).
    """
    client = clients.jobs()
    what = f"grant {role} to {member} on Cloud Run job {name}"
    with translate(what):
        policy = client.get_iam_policy(request={"resource": name})
    if etag is not None and policy.etag != etag:
        raise CloudError(f"{what}: the policy changed since the plan was made",
                         fix=CONCURRENT_FIX)  # fmt: skip
    for binding in policy.bindings:
        if binding.role == role and not binding.HasField("condition"):
            if member not in binding.members:
                binding.members.append(member)
            break
    else:
        policy.bindings.add(role=role, members=[member])
    with translate(what):
        stored = client.set_iam_policy(request={"resource": name, "policy": policy})
    return Policy(bindings={b.role: tuple(b.members) for b in stored.bindings}, etag=stored.etag)
