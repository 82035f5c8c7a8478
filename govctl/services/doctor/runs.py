"""Checks of what runs and what it leaves: the image, executions, run times, the bucket."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from govctl import validate
from govctl.errors import NotFound, UsageError
from govctl.gcp import artifacts, executions, inspect, jobs
from govctl.services import causes
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import (
    FAIL,
    OK,
    SKIP,
    WARN,
    Check,
    Context,
    ago,
    span,
    timeout_s,
)

RUN_TIME_WARN = 0.8  # of the task timeout


def image(ctx: Context, facts: Facts) -> Check:
    job = facts.get("job")
    image = job.image if job is not None else ctx.cfg.job.image
    host = image.split("/", 1)[0]
    if host == "gcr.io" or host.endswith(".gcr.io"):
        return Check(
            "image",
            FAIL,
            f"{image} is on Container Registry, which is shut down",
            "push to Artifact Registry: govctl deploy (image "
            f"{ctx.cfg.region}-docker.pkg.dev/{ctx.project}/REPOSITORY/IMAGE)",
        )
    try:
        ref = artifacts.parse_image(image)
    except UsageError:
        return Check("image", WARN, f"{image} is not in Artifact Registry", "govctl deploy")
    if job is None:
        return Check("image", SKIP, f"no job yet; the settings name {image} (see job)")
    try:
        digest = artifacts.resolve_digest(ref)
    except NotFound as err:
        return Check("image", FAIL, str(err).split(" — ")[0], err.fix)
    if ref.digest is None:
        return Check(
            "image",
            WARN,
            f"{image} exists ({digest[:19]}…) but the job follows a tag, not a digest: a "
            "push changes what runs",
            "govctl deploy (it pins the digest)",
        )
    return Check("image", OK, f"{ref.path}@{digest[:19]}… exists in Artifact Registry")


def last_execution(ctx: Context, facts: Facts) -> Check:
    if facts.get("job") is None:
        return Check("last run", SKIP, "no job (see job)")
    done = [e for e in facts.get("executions") if e.done]
    if not done:
        return Check("last run", OK, "no finished execution yet")
    newest = done[0]
    if newest.status == "succeeded":
        return Check("last run", OK, f"{newest.name} succeeded")
    if newest.status == "cancelled":
        return Check(
            "last run",
            WARN,
            f"{newest.name} was cancelled",
            f"govctl run (or: gcloud run jobs execute {ctx.cfg.job.name} "
            f"--region {ctx.cfg.region})",
        )
    return _classify(ctx, newest, facts.get("job"))


def _labels(ex: executions.Execution) -> str:
    return f'labels."run.googleapis.com/execution_name"="{ex.name}"'


def _classify(ctx: Context, ex: executions.Execution, job: jobs.JobSpec) -> Check:
    """The last run failed: why, from its tasks' fields (:mod:`govctl.services.causes`)."""
    tasks = [t for t in executions.tasks(ex.full) if t.status == "failed"]
    first: dict[causes.Cause, executions.Task] = {}
    for t in tasks:
        first.setdefault(causes.of_task(t), t)
    for cause, check in (
        (causes.Cause.SECRET, _secret),
        (causes.Cause.MEMORY, _memory),
        (causes.Cause.TIMEOUT, _timeout),
    ):
        if cause in first:
            return check(ctx, ex, job, first[cause])
    return _exited(ctx, ex, tasks[0] if tasks else None)


def _secret(
    ctx: Context, ex: executions.Execution, job: jobs.JobSpec, task: executions.Task
) -> Check:
    return Check(
        "last run",
        FAIL,
        f"{ex.name}: task {task.index} could not read one of its [job] secrets "
        "(SECRETS_ACCESS_CHECK_FAILED)",
        "govctl secrets list (then `govctl secrets set NAME`, or `govctl setup` to grant the "
        "job's service account access)",
    )


def _memory(
    ctx: Context, ex: executions.Execution, job: jobs.JobSpec, task: executions.Task
) -> Check:
    # Cloud Run's own words on it are in the system log, shown as the evidence when there.
    system = inspect.log_texts(
        ctx.project,
        f'logName="projects/{ctx.project}/logs/run.googleapis.com%2Fvarlog%2Fsystem" '
        f"AND {_labels(ex)} AND severity>=ERROR",
    )
    said = system[-1].split(". ")[0] if system else f"task {task.index} was killed (SIGKILL)"
    bigger = _double(job.memory_mib)
    name, region = ctx.cfg.job.name, ctx.cfg.region
    return Check(
        "last run",
        FAIL,
        f"{ex.name} ran out of memory: {said}",
        f'raise memory: set [job] memory = "{bigger}" in govctl.toml, then govctl '
        f"deploy (or: gcloud run jobs update {name} --region {region} --memory {bigger})",
    )


def _timeout(
    ctx: Context, ex: executions.Execution, job: jobs.JobSpec, task: executions.Task
) -> Check:
    name, region = ctx.cfg.job.name, ctx.cfg.region
    return Check(
        "last run",
        FAIL,
        f"{ex.name}: task {task.index} reached its task timeout ({span(timeout_s(job))})",
        "raise [job] task_timeout or add tasks ([job] tasks) in govctl.toml, then "
        f"govctl deploy (or: gcloud run jobs update {name} --region {region} "
        f"--task-timeout {span(timeout_s(job) * 2)})",
    )


def _exited(ctx: Context, ex: executions.Execution, task: executions.Task | None) -> Check:
    labels = _labels(ex)
    errors = inspect.log_texts(ctx.project, f"{labels} AND severity>=ERROR", limit=3)
    if task is None:
        exit_text = ex.message
    elif task.term_signal:
        exit_text = f"task {task.index} was ended by signal {task.term_signal}"
    elif task.exit_code is not None:
        exit_text = f"task {task.index} exited with {task.exit_code}"
    else:
        exit_text = f"task {task.index} failed"
    last = f": {errors[-1]}" if errors else " (no ERROR lines logged)"
    return Check(
        "last run",
        FAIL,
        f"{ex.name}: {exit_text}{last}",
        f"govctl logs --execution {ex.name} --errors (or: gcloud logging read "
        f"'resource.type=\"cloud_run_job\" AND {labels} AND severity>=ERROR' "
        f"--project {ctx.project})",
    )


def schedule_interval(ctx: Context, facts: Facts) -> timedelta:
    from zoneinfo import ZoneInfo

    from croniter import croniter

    sched = facts.get("scheduler")
    cron = sched.cron if sched is not None else ctx.cfg.schedule.cron
    tz = sched.time_zone if sched is not None else ctx.cfg.schedule.time_zone
    it = croniter(cron, ctx.now().astimezone(ZoneInfo(tz)))
    first: datetime = it.get_next(datetime)
    second: datetime = it.get_next(datetime)
    return second - first


def run_time(ctx: Context, facts: Facts) -> Check:
    job = facts.get("job")
    if job is None:
        return Check("run time", SKIP, "no job (see job)")
    times = [
        d
        for e in facts.get("executions")
        if e.status == "succeeded" and (d := e.duration_s()) is not None
    ]
    if not times:
        return Check("run time", OK, "no successful execution to measure yet")
    median = statistics.median(times)
    timeout = timeout_s(job)
    share = median / timeout
    interval = schedule_interval(ctx, facts).total_seconds()
    evidence = (
        f"median {span(median)} of {len(times)} run(s): {share:.0%} of the "
        f"{span(timeout)} task timeout; the schedule runs every {span(interval)}"
    )
    if median > interval:
        return Check(
            "run time",
            WARN,
            evidence + " — runs would overlap",
            "add tasks ([job] tasks) or run less often ([schedule] cron), then govctl deploy",
        )
    if share > RUN_TIME_WARN:
        return Check(
            "run time",
            WARN,
            evidence,
            "raise [job] task_timeout or [job] tasks in govctl.toml, then govctl deploy",
        )
    return Check("run time", OK, evidence)


def bucket(ctx: Context, facts: Facts) -> Check:
    b = facts.get("bucket")
    name, region = ctx.cfg.bucket, ctx.cfg.region
    if b is None:
        return Check(
            "bucket",
            FAIL,
            f"gs://{name} does not exist",
            f"govctl setup (or: gcloud storage buckets create gs://{name} --project "
            f"{ctx.project} --location {region} --uniform-bucket-level-access "
            "--public-access-prevention)",
        )
    if b.location != region.upper():
        return Check(
            "bucket",
            WARN,
            f"gs://{name} is in {b.location}, the job in {region.upper()}: every digest "
            "crosses regions",
            f"use a bucket in {region} ([bucket] name), created by govctl setup",
        )
    return Check("bucket", OK, f"gs://{name} in {b.location}")


def digests(ctx: Context, facts: Facts) -> Check:
    b = facts.get("bucket")
    if b is None:
        return Check("digests", SKIP, "no bucket (see bucket)")
    if b.newest is None:
        return Check("digests", WARN, f"no digests in gs://{b.bucket} yet", "govctl run --limit 10")
    interval = schedule_interval(ctx, facts)
    age = ctx.now() - b.newest
    evidence = f"{b.digests} digest(s); newest written {ago(b.newest, ctx.now())}"
    if age > 2 * interval:
        return Check(
            "digests",
            WARN,
            evidence
            + f", older than two schedule intervals ({span(2 * interval.total_seconds())})",
            "see why runs stop writing: govctl executions list",
        )
    return Check("digests", OK, evidence)


def _double(memory_mib: int | str) -> str:
    """Twice the job's memory, as govctl writes it ("512Mi" -> "1Gi")."""
    if isinstance(memory_mib, int):
        return validate.format_memory(memory_mib * 2)
    return f"more than {memory_mib}"
