"""What `govctl deploy` means: the desired state from the settings, the current state from
Google, the plan between them (per resource, field by field), and applying it.

Four resources, applied in this order because each needs the one before: the Artifact
Registry repository of the image, the Cloud Run job, the IAM binding that lets the service
account run it, the scheduler job that runs it as that service account. Every write is
read-modify-write with the etag (or update time) the plan saw, so a change made in between is
an error, never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from govctl import validate
from govctl.config import Config
from govctl.errors import GovctlError
from govctl.gcp import artifacts, buckets, iam, jobs, scheduler
from govctl.gcp.jobs import JobSpec
from govctl.gcp.scheduler import ScheduleSpec
from govctl.services.plan import (
    CREATE,
    UNCHANGED,
    UPDATE,
    Change,
    Problem,
    ResourcePlan,
    as_dict,
)
from govctl.services.plan import resource as _resource

INVOKER = "roles/run.invoker"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# RunJob answers as soon as the execution is created; Cloud Scheduler's default (3 min)
# leaves room for a slow API without holding the attempt open for the whole run.
ATTEMPT_DEADLINE = timedelta(minutes=3)
MANAGED_BY = "govctl"


@dataclass(frozen=True)
class Plan:
    project: str
    region: str
    image: str
    commit: str | None
    repository: ResourcePlan
    job: ResourcePlan
    iam: ResourcePlan
    schedule: ResourcePlan
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    # the desired state, for apply
    desired_job: JobSpec | None = field(default=None, repr=False)
    desired_schedule: ScheduleSpec | None = field(default=None, repr=False)
    job_path: str = ""
    schedule_path: str = ""
    member: str = ""

    @property
    def resources(self) -> tuple[ResourcePlan, ...]:
        return (self.repository, self.job, self.iam, self.schedule)

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.resources)

    @property
    def has_changes(self) -> bool:
        return any(r.action != UNCHANGED for r in self.resources)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (stable snake_case keys)."""
        return as_dict(self.project, self.region, self.resources, self.problems,
                       self.notes or None, image=self.image, commit=self.commit)  # fmt: skip


# Desired state ---------------------------------------------------------------------------


def desired_job(cfg: Config, image: str, commit: str | None, current: JobSpec | None) -> JobSpec:
    labels = {"managed-by": MANAGED_BY}
    if commit:
        labels["commit-sha"] = commit
    elif current and current.image == image and "commit-sha" in current.labels:
        labels["commit-sha"] = current.labels["commit-sha"]  # same image: still that commit
    env = {"REPOS_FEED_URL": cfg.job.feed, "GCS_BUCKET_NAME": cfg.bucket, **cfg.job.env}
    return JobSpec(
        image=image,
        cpu=cfg.job.cpu,
        memory_mib=cfg.job.memory_mib,
        task_timeout=cfg.job.task_timeout,
        max_retries=cfg.job.max_retries,
        tasks=cfg.job.tasks,
        parallelism=cfg.job.parallelism,
        service_account=cfg.job.service_account,
        env=env,
        args=tuple(cfg.job.args),
        labels=labels,
        secrets=dict(cfg.job.secrets),
    )


def desired_schedule(cfg: Config) -> ScheduleSpec:
    return ScheduleSpec(
        cron=cfg.schedule.cron,
        time_zone=cfg.schedule.time_zone,
        uri=cfg.run_uri,
        http_method="POST",
        service_account=cfg.job.service_account,
        scope=SCOPE,
        attempt_deadline=ATTEMPT_DEADLINE,
        auth="oauth",
    )


# Diffs -----------------------------------------------------------------------------------

_JOB_FIELDS = (
    ("image", "image"),
    ("cpu", "cpu"),
    ("memory", "memory_mib"),
    ("task_timeout", "task_timeout"),
    ("max_retries", "max_retries"),
    ("tasks", "tasks"),
    ("parallelism", "parallelism"),
    ("service_account", "service_account"),
    ("args", "args"),
)
_SCHEDULE_FIELDS = (
    ("cron", "cron"),
    ("time_zone", "time_zone"),
    ("uri", "uri"),
    ("http_method", "http_method"),
    ("auth", "auth"),
    ("service_account", "service_account"),
    ("scope", "scope"),
    ("attempt_deadline", "attempt_deadline"),
)


def _memory(value: Any) -> Any:
    return validate.format_memory(value) if isinstance(value, int) else value


def _job_changes(current: JobSpec | None, desired: JobSpec) -> tuple[Change, ...]:
    changes = []
    for label, attr in _JOB_FIELDS:
        new = getattr(desired, attr)
        old = getattr(current, attr) if current else None
        if attr == "memory_mib":
            new, old = _memory(new), _memory(old)
        if old != new:
            changes.append(Change(label, old, new))
    old_env = current.env if current else {}
    for name in sorted(set(old_env) | set(desired.env)):
        if old_env.get(name) != desired.env.get(name):
            changes.append(Change(f"env {name}", old_env.get(name), desired.env.get(name)))
    # References only ("github-token:3"): a plan never holds a secret's value.
    old_secrets = current.secrets if current else {}
    for name in sorted(set(old_secrets) | set(desired.secrets)):
        if old_secrets.get(name) != desired.secrets.get(name):
            changes.append(
                Change(f"secret {name}", old_secrets.get(name), desired.secrets.get(name))
            )
    old_labels = current.labels if current else {}
    for name in jobs.MANAGED_LABELS:
        if old_labels.get(name) != desired.labels.get(name):
            changes.append(Change(f"label {name}", old_labels.get(name), desired.labels.get(name)))
    return tuple(changes)


def _schedule_changes(current: ScheduleSpec | None, desired: ScheduleSpec) -> tuple[Change, ...]:
    changes = []
    for label, attr in _SCHEDULE_FIELDS:
        new = getattr(desired, attr)
        old = getattr(current, attr) if current else None
        if old != new:
            changes.append(Change(label, old, new))
    return tuple(changes)


# Plan and apply --------------------------------------------------------------------------


def problems(cfg: Config) -> tuple[Problem, ...]:
    """What deploy needs but does not create; checked before any write."""
    project = cfg.require_project()
    found = []
    account = cfg.job.service_account
    if iam.service_account(project, account) is None:
        account_id = account.split("@", 1)[0]
        found.append(Problem(
            f"service account {account} does not exist",
            f"run `govctl setup`, or `gcloud iam service-accounts create {account_id} "
            f"--project {project}`",
        ))  # fmt: skip
    if buckets.get(cfg.bucket, project) is None:
        found.append(Problem(
            f"bucket gs://{cfg.bucket} does not exist",
            f"run `govctl setup`, or `gcloud storage buckets create gs://{cfg.bucket} "
            f"--project {project} --location {cfg.region} --uniform-bucket-level-access`",
        ))  # fmt: skip
    found += secret_problems(cfg)
    return tuple(found)


def secret_problems(cfg: Config) -> list[Problem]:
    """Each [job] secrets entry the job could not read: a task would fail at start."""
    from govctl.services import secrets as secret_service

    return [
        Problem(f"{s.name}: {s.problem}", s.fix)
        for s in secret_service.status(cfg)
        if s.problem is not None and s.fix is not None
    ]


def _repository(cfg: Config) -> ResourcePlan:
    """The Artifact Registry repository ``[job] image`` lives in (the etag slot keeps its
    parsed reference, for apply)."""
    ref = artifacts.parse_image(cfg.job.image)
    name = f"{ref.repository} ({ref.location}-docker.pkg.dev/{ref.project})"
    if artifacts.get_repository(ref.project, ref.location, ref.repository) is not None:
        return ResourcePlan("repository", name, UNCHANGED, etag=ref)
    changes = (Change("format", None, "DOCKER"), Change("location", None, ref.location))
    return ResourcePlan("repository", name, CREATE, changes, etag=ref)


def _schedule_notes(cfg: Config, current: ScheduleSpec | None) -> tuple[str, ...]:
    if current is not None and current.state == "PAUSED":
        return (f"scheduler {cfg.schedule.name} is PAUSED and stays so: the job runs only by "
                "hand until `govctl schedule resume`",)  # fmt: skip
    return ()


def plan(cfg: Config, image: str, commit: str | None = None) -> Plan:
    """The changes that would make the project match the settings; reads only.

    ``image`` is the image reference to deploy (digest-pinned once the image service resolves
    it); ``commit`` becomes the ``commit-sha`` label.
    """
    cfg.require_project()
    repository_plan = _repository(cfg)
    current_job = jobs.get_job(cfg.job_path)
    want_job = desired_job(cfg, image, commit, current_job)
    job_plan = _resource("run job", cfg.job.name, current_job is not None,
                         _job_changes(current_job, want_job),
                         current_job.etag if current_job else None)  # fmt: skip

    member = f"serviceAccount:{cfg.job.service_account}"
    if current_job is None:
        iam_plan = ResourcePlan("iam", f"{INVOKER} for {cfg.job.service_account}", CREATE,
                                (Change("member", None, member),))  # fmt: skip
    else:
        policy = jobs.get_policy(cfg.job_path)
        has = member in policy.bindings.get(INVOKER, ())
        iam_plan = ResourcePlan(
            "iam", f"{INVOKER} for {cfg.job.service_account}", UNCHANGED if has else CREATE,
            () if has else (Change("member", None, member),), policy.etag,
        )  # fmt: skip

    current_schedule = scheduler.get(cfg.schedule_path)
    want_schedule = desired_schedule(cfg)
    seen = current_schedule.user_update_time if current_schedule else None
    schedule_plan = _resource("scheduler", cfg.schedule.name, current_schedule is not None,
                              _schedule_changes(current_schedule, want_schedule), seen)  # fmt: skip
    return Plan(
        project=cfg.require_project(),
        region=cfg.region,
        image=image,
        commit=commit,
        repository=repository_plan,
        job=job_plan,
        iam=iam_plan,
        schedule=schedule_plan,
        problems=problems(cfg),
        notes=_schedule_notes(cfg, current_schedule),
        desired_job=want_job,
        desired_schedule=want_schedule,
        job_path=cfg.job_path,
        schedule_path=cfg.schedule_path,
        member=member,
    )


@dataclass(frozen=True)
class Applied:
    """What apply did, resource by resource ("created run job X", …)."""

    done: tuple[str, ...]


def apply(p: Plan) -> Applied:
    """Make the changes of ``p``; writes nothing when it has none or has problems."""
    if p.problems:
        raise GovctlError(
            "cannot deploy: " + "; ".join(x.what for x in p.problems),
            fix="; ".join(dict.fromkeys(x.fix for x in p.problems)),
        )
    assert p.desired_job is not None and p.desired_schedule is not None
    done: list[str] = []
    parent = p.job_path.rsplit("/jobs/", 1)[0]
    if p.repository.action == CREATE:
        from govctl.services.image import ensure_repository

        ref = p.repository.etag
        if ensure_repository(ref.project, ref.location, ref.repository):
            done.append(f"created Artifact Registry repository {p.repository.name}")
    if p.job.action == CREATE:
        jobs.create_job(parent, p.job.name, p.desired_job)
        done.append(f"created run job {p.job.name}")
    elif p.job.action == UPDATE:
        jobs.update_job(p.job_path, p.desired_job, p.job.etag)
        done.append(f"updated run job {p.job.name} ({len(p.job.changes)} fields)")
    if p.iam.action == CREATE:
        jobs.add_member(p.job_path, INVOKER, p.member, p.iam.etag)
        done.append(f"granted {INVOKER} to {p.member} on the job")
    if p.schedule.action == CREATE:
        scheduler.create(parent, p.schedule_path, p.desired_schedule)
        done.append(f"created scheduler {p.schedule.name}")
    elif p.schedule.action == UPDATE:
        scheduler.update(p.schedule_path, p.desired_schedule, p.schedule.etag)
        done.append(f"updated scheduler {p.schedule.name} ({len(p.schedule.changes)} fields)")
    return Applied(tuple(done))
