"""What `govctl deploy` means: the desired state from the settings, the current state from
Google, the plan between them (per resource, field by field), and applying it.

Four resources, applied in this order because each needs the one before: the Artifact
Registry repository of the image, the Cloud Run job, the IAM binding that lets the service
account run it, the scheduler job that runs it as that service account. Every write is
read-modify-write with the etag (or update time) the plan saw, so a change made in between is
an error, never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from govctl import validate
from govctl.config import Config
from govctl.gcp import artifacts, buckets, iam, jobs, scheduler
from govctl.gcp.artifacts import ImageRef
from govctl.gcp.jobs import JobSpec
from govctl.gcp.scheduler import ScheduleSpec
from govctl.services import image as images
from govctl.services.plan import (
    CREATE,
    UNCHANGED,
    UPDATE,
    Applied,
    Change,
    Plan,
    Problem,
    ResourcePlan,
)
from govctl.services.plan import resource as _resource

INVOKER = "roles/run.invoker"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# RunJob answers as soon as the execution is created; Cloud Scheduler's default (3 min)
# leaves room for a slow API without holding the attempt open for the whole run.
ATTEMPT_DEADLINE = timedelta(minutes=3)
MANAGED_BY = "govctl"


@dataclass(frozen=True)
class ImageChoice:
    """The image a deploy pins the job to."""

    ref: str  # what the plan shows: PATH@sha256:… , or PATH:TAG while still to be built
    commit: str | None
    build: images.BuildMode | None = None  # how to build it before applying; None: it exists


@dataclass(frozen=True)
class DeployPlan:
    """The four resources of a deploy, in the order apply makes them, and what apply writes."""

    plan: Plan
    image: ImageChoice
    repository: ResourcePlan
    job: ResourcePlan
    iam: ResourcePlan
    schedule: ResourcePlan
    target: ImageRef  # the repository the image lives in
    desired_job: JobSpec
    desired_schedule: ScheduleSpec
    parent: str  # projects/P/locations/R
    job_path: str
    schedule_path: str
    member: str
    # What apply must find unchanged: read-modify-write refuses a change made since the plan.
    job_etag: str  # "" when the job does not exist
    policy_etag: bytes | None  # the job's IAM policy; None when the job does not exist
    schedule_seen: datetime | None  # the scheduler job's user_update_time


# The image ----------------------------------------------------------------------------------


def choose_image(
    cfg: Config, image: str | None, build: images.BuildMode | None, allow_dirty: bool
) -> ImageChoice:
    """The image to deploy: ``image`` (already checked) resolved to its digest, or the bundled
    job's image.

    A build is looked up by its tag (the commit, or the package version) first: an image
    already built from this source is reused, so an unchanged redeploy stays unchanged.
    Reads only; a build that is needed happens after the plan is confirmed (:func:`build`).
    """
    if image is not None:
        return ImageChoice(images.resolve_image(image), None)
    target = artifacts.parse_image(cfg.job.image)
    _, info = images.source_bundle(allow_dirty=allow_dirty)
    found = images.find_image(
        target.project, target.location, info.tag, repository=target.repository,
        image=target.image,
    )  # fmt: skip
    if found is not None:
        return ImageChoice(found, info.commit)
    return ImageChoice(f"{target.path}:{info.tag}", info.commit, build or "cloud")


def build(
    cfg: Config, choice: ImageChoice, allow_dirty: bool, on_log: Callable[[str], None]
) -> ImageChoice:
    """Build the image ``choice`` says is missing; the choice pinned to its digest."""
    target = artifacts.parse_image(cfg.job.image)
    built = images.build_image(
        target.project, target.location, repository=target.repository, image=target.image,
        mode=choice.build or "cloud", allow_dirty=allow_dirty, on_log=on_log,
        account=cfg.build.service_account,
    )  # fmt: skip
    return ImageChoice(built.uri, built.commit)


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


def _memory(value: object) -> object:
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


def _build_problems(cfg: Config, choice: ImageChoice) -> tuple[Problem, ...]:
    """A Cloud Build to come needs its service account (``[build] service_account``)."""
    from govctl.services import build_account

    if choice.build != "cloud":
        return ()
    missing = build_account.deploy_problem(cfg, cfg.require_project())
    return (missing,) if missing else ()


def secret_problems(cfg: Config) -> list[Problem]:
    """Each [job] secrets entry the job could not read: a task would fail at start."""
    from govctl.services import secrets as secret_service

    return [
        Problem(f"{s.name}: {s.problem}", s.fix)
        for s in secret_service.status(cfg)
        if s.problem is not None and s.fix is not None
    ]


def _repository(cfg: Config) -> tuple[ResourcePlan, ImageRef]:
    """The Artifact Registry repository ``[job] image`` lives in, and its reference."""
    ref = artifacts.parse_image(cfg.job.image)
    name = f"{ref.repository} ({ref.location}-docker.pkg.dev/{ref.project})"
    if artifacts.get_repository(ref.project, ref.location, ref.repository) is not None:
        return ResourcePlan("repository", name, UNCHANGED), ref
    changes = (Change("format", None, "DOCKER"), Change("location", None, ref.location))
    return ResourcePlan("repository", name, CREATE, changes), ref


def _schedule_notes(cfg: Config, current: ScheduleSpec | None) -> tuple[str, ...]:
    if current is not None and current.state == "PAUSED":
        return (f"scheduler {cfg.schedule.name} is PAUSED and stays so: the job runs only by "
                "hand until `govctl schedule resume`",)  # fmt: skip
    return ()


def _iam(cfg: Config, job_exists: bool, member: str) -> tuple[ResourcePlan, bytes | None]:
    """The grant of run.invoker on the job, and the etag of the job's policy as read."""
    name = f"{INVOKER} for {cfg.job.service_account}"
    grant = (Change("member", None, member),)
    if not job_exists:
        return ResourcePlan("iam", name, CREATE, grant), None
    policy = jobs.get_policy(cfg.job_path)
    if member in policy.bindings.get(INVOKER, ()):
        return ResourcePlan("iam", name, UNCHANGED), policy.etag
    return ResourcePlan("iam", name, CREATE, grant), policy.etag


def plan(cfg: Config, image: str | ImageChoice, commit: str | None = None) -> DeployPlan:
    """The changes that would make the project match the settings; reads only.

    ``image`` is the image to deploy (an :class:`ImageChoice`, or a digest-pinned reference
    with ``commit``); its commit becomes the ``commit-sha`` label.
    """
    choice = image if isinstance(image, ImageChoice) else ImageChoice(image, commit)
    project = cfg.require_project()
    repository_plan, target = _repository(cfg)
    current_job = jobs.get_job(cfg.job_path)
    want_job = desired_job(cfg, choice.ref, choice.commit, current_job)
    job_changes = tuple(
        Change(c.field, c.old, c.new, f"commit {choice.commit[:7]}")
        if c.field == "image" and choice.commit else c
        for c in _job_changes(current_job, want_job)
    )  # fmt: skip
    job_plan = _resource("run job", cfg.job.name, current_job is not None, job_changes)
    member = f"serviceAccount:{cfg.job.service_account}"
    iam_plan, policy_etag = _iam(cfg, current_job is not None, member)
    current_schedule = scheduler.get(cfg.schedule_path)
    want_schedule = desired_schedule(cfg)
    schedule_plan = _resource("scheduler", cfg.schedule.name, current_schedule is not None,
                              _schedule_changes(current_schedule, want_schedule))  # fmt: skip
    shared = Plan(
        project=project,
        region=cfg.region,
        resources=(repository_plan, job_plan, iam_plan, schedule_plan),
        problems=problems(cfg) + _build_problems(cfg, choice),
        notes=_schedule_notes(cfg, current_schedule),
        details={"image": choice.ref, "commit": choice.commit, "build": choice.build},
    )
    return DeployPlan(
        plan=shared, image=choice, repository=repository_plan, job=job_plan, iam=iam_plan,
        schedule=schedule_plan, target=target, desired_job=want_job,
        desired_schedule=want_schedule, parent=cfg.parent, job_path=cfg.job_path,
        schedule_path=cfg.schedule_path, member=member,
        job_etag=current_job.etag if current_job else "", policy_etag=policy_etag,
        schedule_seen=current_schedule.user_update_time if current_schedule else None,
    )  # fmt: skip


def apply(p: DeployPlan) -> Applied:
    """Make the changes of ``p``; writes nothing when it has problems."""
    if p.plan.problems:
        raise p.plan.refusal("deploy")
    done: list[str] = []
    if p.repository.action == CREATE:
        ref = p.target
        if images.ensure_repository(ref.project, ref.location, ref.repository):
            done.append(f"created Artifact Registry repository {p.repository.name}")
    if p.job.action == CREATE:
        jobs.create_job(p.parent, p.job.name, p.desired_job)
        done.append(f"created run job {p.job.name}")
    elif p.job.action == UPDATE:
        jobs.update_job(p.job_path, p.desired_job, p.job_etag)
        done.append(f"updated run job {p.job.name} ({len(p.job.changes)} fields)")
    if p.iam.action == CREATE:
        jobs.add_member(p.job_path, INVOKER, p.member, p.policy_etag)
        done.append(f"granted {INVOKER} to {p.member} on the job")
    if p.schedule.action == CREATE:
        scheduler.create(p.parent, p.schedule_path, p.desired_schedule)
        done.append(f"created scheduler {p.schedule.name}")
    elif p.schedule.action == UPDATE:
        scheduler.update(p.schedule_path, p.desired_schedule, p.schedule_seen)
        done.append(f"updated scheduler {p.schedule.name} ({len(p.schedule.changes)} fields)")
    return Applied(tuple(done))
