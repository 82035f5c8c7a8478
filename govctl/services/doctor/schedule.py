"""Checks of the Cloud Scheduler job: its target and token, its state, its last attempt."""

from __future__ import annotations

import re

from govctl import render_time
from govctl.gcp.scheduler import ScheduleSpec
from govctl.services.doctor.access import (
    AGENT_ROLE,
    INVOKER,
    WITH_OVERRIDES,
    agent_member,
    missing_run_roles,
)
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import FAIL, OK, SKIP, WARN, Action, Check, Context


def scheduler_target(ctx: Context, facts: Facts) -> Check:
    sched = facts.get("scheduler")
    name, region = ctx.cfg.schedule.name, ctx.cfg.region
    if sched is None:
        return Check("scheduler", FAIL, f"scheduler job {name} not found", "govctl deploy")
    update = f"gcloud scheduler jobs update http {name} --location {region}"
    want = ctx.cfg.run_uri
    if sched.uri != want:
        return Check(
            "scheduler",
            FAIL,
            f"targets {sched.uri}, not this job's v2 :run URI {want}",
            f"govctl deploy (or: {update} --uri={want})",
        )
    if sched.http_method != "POST":
        return Check(
            "scheduler",
            FAIL,
            f"sends {sched.http_method}; RunJob takes POST",
            f"govctl deploy (or: {update} --http-method=POST)",
        )
    if sched.auth != "oauth":
        what = "an OIDC token, which Google APIs refuse" if sched.auth else "no token"
        email = sched.service_account or ctx.cfg.job.service_account
        return Check(
            "scheduler",
            FAIL,
            f"authenticates with {what}; Run's API needs an OAuth token",
            f"govctl deploy (or: {update} --oauth-service-account-email={email} "
            "--oauth-token-scope=https://www.googleapis.com/auth/cloud-platform)",
        )
    if sched.state != "ENABLED":
        return Check(
            "scheduler",
            WARN if sched.state == "PAUSED" else FAIL,
            f"{name} is {sched.state}: the job is not run on schedule ({sched.cron})",
            f"govctl doctor --fix (or: gcloud scheduler jobs resume {name} --location {region})",
            (Action("resume", ctx.cfg.schedule_path),),
        )
    return Check(
        "scheduler",
        OK,
        f"{name} ({sched.cron} {sched.time_zone}) POSTs to the job's :run with an "
        f"OAuth token of {sched.service_account}",
    )


def scheduler_last_attempt(ctx: Context, facts: Facts) -> Check:
    sched = facts.get("scheduler")
    if sched is None:
        return Check("last attempt", SKIP, "no scheduler job (see scheduler)")
    if sched.last_status is None:
        return Check("last attempt", OK, "no attempt yet")
    stamp = render_time.when(sched.last_attempt_time, seconds=False)
    if sched.last_status == "OK":
        return Check("last attempt", OK, f"{stamp} OK")
    cause, fix, still = _attempt_cause(ctx, sched, facts)
    evidence = f"{stamp} {sched.last_status}: {cause}"
    if not still:
        return Check(
            "last attempt",
            WARN,
            evidence + " — fixed since; the next attempt will tell",
            f"gcloud scheduler jobs run {ctx.cfg.schedule.name} --location {ctx.cfg.region}",
        )
    return Check("last attempt", FAIL, evidence, fix)


def _attempt_cause(ctx: Context, sched: ScheduleSpec, facts: Facts) -> tuple[str, str, bool]:
    """What a failed attempt means, its fix, and whether the cause is still there."""
    message = sched.status_message
    member = sched.service_account or ctx.cfg.job.service_account
    if sched.last_status == "PERMISSION_DENIED":
        if "service agent" in message or "serviceAgent" in message:
            still = not facts.get("project_policy").holds(agent_member(ctx, facts), AGENT_ROLE)
            return (
                f"Cloud Scheduler's service agent lacks {AGENT_ROLE}",
                "govctl doctor --fix",
                still,
            )
        missing = missing_run_roles(ctx, facts) if facts.get("job") else []
        role = WITH_OVERRIDES if "runWithOverrides" in message else INVOKER
        still = any(r == role for _, r in missing) or facts.get("job") is None
        return f"{member} lacks {role} on the job", "govctl doctor --fix", still
    if sched.last_status == "NOT_FOUND":
        target = re.search(r"/jobs/([^/:]+):run", sched.uri)
        job = target.group(1) if target else sched.uri
        still = sched.uri != ctx.cfg.run_uri or facts.get("job") is None
        return (
            f"the target job {job} does not exist",
            f"govctl deploy (the scheduler must target {ctx.cfg.job.name})",
            still,
        )
    if sched.last_status == "UNAUTHENTICATED":
        account = facts.get("service_account")
        still = sched.auth != "oauth" or account is None or account.disabled
        return (
            f"no OAuth token could be sent ({message})",
            "govctl deploy (OAuth token of an existing service account)",
            still,
        )
    return message or "the attempt failed", "govctl logs --scheduler", True
