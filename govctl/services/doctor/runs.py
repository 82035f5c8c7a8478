"""Checks of what runs and what it leaves: the image, executions, run times, the bucket."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from govctl import validate
from govctl.errors import NotFound, UsageError
from govctl.gcp import artifacts, executions, inspect, jobs
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


def _classify(ctx: Context, ex: executions.Execution, job: jobs.JobSpec) -> Check:
    tasks = [t for t in executions.tasks(ex.full) if t.status == "failed"]
    name, region = ctx.cfg.job.name, ctx.cfg.region
    labels = f'labels."run.googleapis.com/execution_name"="{ex.name}"'
    if any(t.exit_code == 137 or t.term_signal == 9 for t in tasks):
        system = inspect.log_texts(
            ctx.project,
            f'logName="projects/{ctx.project}/logs/run.googleapis.com%2Fvarlog%2Fsystem" '
            f"AND {labels}",
        )
        oom = [line for line in system if line.startswith("Memory limit of")]
        if oom:
            bigger = _double(job.memory_mib)
            return Check(
                "last run",
                FAIL,
                f"{ex.name} ran out of memory: {oom[-1].split('. Consider')[0]}",
                f'raise memory: set [job] memory = "{bigger}" in govctl.toml, then govctl '
                f"deploy (or: gcloud run jobs update {name} --region {region} "
                f"--memory {bigger})",
            )
    timed_out = [t for t in tasks if t.timed_out]
    if timed_out:
        return Check(
            "last run",
            FAIL,
            f"{ex.name}: task {timed_out[0].index} reached its task timeout "
            f"({span(timeout_s(job))})",
            "raise [job] task_timeout or add tasks ([job] tasks) in govctl.toml, then "
            f"govctl deploy (or: gcloud run jobs update {name} --region {region} "
            f"--task-timeout {span(timeout_s(job) * 2)})",
        )
    errors = inspect.log_texts(ctx.project, f"{labels} AND severity>=ERROR", limit=3)
    task = tasks[0] if tasks else None
    exit_text = f"task {task.index} exited with {task.exit_code}" if task else ex.message
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
    evidence = f"{b.count:,} digest(s); newest written {ago(b.newest, ctx.now())}"
    if b.note:
        evidence += f" ({b.note})"
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
