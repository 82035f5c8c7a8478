"""Checks of who and what: credentials, project, billing, APIs, IAM, the job."""

from __future__ import annotations

from govctl.errors import GovctlError
from govctl.gcp import buckets, iam
from govctl.gcp.iam import Policy
from govctl.services.doctor.facts import DEPLOY_PERMISSIONS, Facts
from govctl.services.doctor.model import (
    FAIL,
    OK,
    SKIP,
    WARN,
    Action,
    Check,
    Context,
    memory_text,
    span,
    timeout_s,
)

AGENT_ROLE = "roles/cloudscheduler.serviceAgent"
INVOKER = "roles/run.invoker"
WITH_OVERRIDES = "roles/run.jobsExecutorWithOverrides"
BUCKET_ROLE = buckets.JOB_ROLE  # what `govctl setup` grants, on this bucket only
ACT_AS = "iam.serviceAccounts.actAs"


def credentials(ctx: Context, facts: Facts) -> Check:
    who = facts.get("caller")
    if who == iam.UNKNOWN_USER:
        who = "a user account (its email is not in the credentials: `gcloud auth list` shows it)"
    host = ctx.cfg.cloud.emulator
    where = f"govctl emulator at {host}" if host else "Application Default Credentials"
    return Check("credentials", OK, f"{who} ({where})")


def project(ctx: Context, facts: Facts) -> Check:
    proj = facts.get("project")
    status = OK if proj.state == "ACTIVE" else FAIL
    fix = None if status == OK else f"gcloud projects undelete {ctx.project}"
    return Check("project", status, f"{proj.project_id} (number {proj.number}, {proj.state})", fix)


def billing(ctx: Context, facts: Facts) -> Check:
    info = facts.get("billing")
    if info.enabled:
        return Check("billing", OK, f"enabled ({info.account})")
    return Check(
        "billing",
        FAIL,
        f"billing is disabled for {ctx.project}: Cloud Run jobs will not run",
        f"gcloud billing projects link {ctx.project} --billing-account=ACCOUNT_ID "
        "(list accounts: gcloud billing accounts list)",
    )


def deploy_permissions(ctx: Context, facts: Facts) -> Check:
    held: set[str] = facts.get("deploy_permissions")
    caller = facts.get("caller")
    missing = [p for p in DEPLOY_PERMISSIONS if p not in held]
    sa = ctx.cfg.job.service_account
    exists = facts.get("service_account") is not None
    if exists and ACT_AS not in iam.test_service_account(ctx.project, sa, [ACT_AS]):
        missing.append(ACT_AS)
    if not missing:
        return Check("deploy rights", OK, f"{caller} may deploy jobs and schedules and act as {sa}")
    fixes = []
    for role in sorted({DEPLOY_PERMISSIONS[p] for p in missing if p in DEPLOY_PERMISSIONS}):
        fixes.append(
            f"gcloud projects add-iam-policy-binding {ctx.project} --member={caller} --role={role}"
        )
    if ACT_AS in missing:
        fixes.append(
            f"gcloud iam service-accounts add-iam-policy-binding {sa} --member={caller} "
            "--role=roles/iam.serviceAccountUser"
        )
    return Check(
        "deploy rights",
        FAIL,
        f"{caller} lacks {', '.join(missing)}",
        "ask a project owner: " + "; ".join(fixes),
    )


def service_account(ctx: Context, facts: Facts) -> Check:
    sa = facts.get("service_account")
    email = ctx.cfg.job.service_account
    if sa is None:
        account_id = email.split("@")[0]
        return Check(
            "service account",
            FAIL,
            f"{email} does not exist",
            f"govctl setup (or: gcloud iam service-accounts create {account_id} "
            f"--project {ctx.project})",
        )
    if sa.disabled:
        return Check(
            "service account",
            FAIL,
            f"{email} is disabled",
            f"gcloud iam service-accounts enable {email} --project {ctx.project}",
        )
    return Check("service account", OK, f"{email} exists and is enabled")


def bucket_write(ctx: Context, facts: Facts) -> Check:
    member = f"serviceAccount:{ctx.cfg.job.service_account}"
    bucket = ctx.cfg.bucket
    if facts.get("bucket") is None:
        return Check("bucket access", SKIP, f"no bucket gs://{bucket} (see bucket)")
    if facts.get("service_account") is None:
        return Check("bucket access", SKIP, "no service account (see service account)")
    fix = (
        f"govctl setup (it grants it on this bucket; or: gcloud storage buckets "
        f"add-iam-policy-binding gs://{bucket} --member={member} --role={BUCKET_ROLE})"
    )
    held = _bucket_policy(bucket, ctx.project)
    if isinstance(held, Policy) and held.grants(member, "storage.objects.create"):
        return Check("bucket access", OK, f"{member} may write objects in gs://{bucket}")
    project_policy = facts.get("project_policy")
    if project_policy.grants(member, "storage.objects.create"):
        roles = ", ".join(sorted(project_policy.roles_of(member)))
        return Check(
            "bucket access",
            WARN,
            f"{member} writes through project-wide {roles}: every bucket of the project",
            f"grant on this bucket only: {fix}, then remove the project-wide role",
        )
    if held == buckets.UNSUPPORTED:
        # The emulator's fake-gcs-server has no bucket IAM at all: nothing to judge, and
        # nothing wrong (a documented limit of the emulator, not a finding for its user).
        return Check(
            "bucket access",
            SKIP,
            "not checkable here: the emulator's storage (fake-gcs-server) has no bucket IAM; "
            f"on Google Cloud `govctl setup` grants {BUCKET_ROLE} on gs://{bucket}",
        )
    if held is None:
        # Without storage.buckets.getIamPolicy a grant on the bucket cannot be seen: say so
        # rather than fail.
        return Check(
            "bucket access",
            WARN,
            f"cannot read the IAM policy of gs://{bucket}, and the project grants {member} "
            "no object writes",
            fix,
        )
    return Check("bucket access", FAIL, f"{member} may not write objects in gs://{bucket}", fix)


def _no_scheduler(facts: Facts) -> bool:
    """Whether the scheduler job is known to be missing (a read that failed says nothing)."""
    try:
        return facts.get("scheduler") is None
    except GovctlError:
        return False


def job(ctx: Context, facts: Facts) -> Check:
    job = facts.get("job")
    name = ctx.cfg.job.name
    if job is None and _no_scheduler(facts):
        # What `govctl destroy` leaves, or a project before its first deploy.
        return Check(
            "job",
            FAIL,
            f"nothing is deployed in {ctx.cfg.region}: no Cloud Run job {name}, no scheduler "
            f"job {ctx.cfg.schedule.name}",
            "govctl setup, then govctl deploy",
        )
    if job is None:
        return Check(
            "job", FAIL, f"Cloud Run job {name} not found in {ctx.cfg.region}", "govctl deploy"
        )
    evidence = (
        f"{name}: {job.tasks} task(s), {job.cpu} CPU, {memory_text(job)}, "
        f"timeout {span(timeout_s(job))}, as "
        f"{job.service_account or 'the default account'}"
    )
    if job.service_account != ctx.cfg.job.service_account:
        return Check(
            "job",
            WARN,
            evidence + f" (settings say {ctx.cfg.job.service_account})",
            "govctl deploy",
        )
    return Check("job", OK, evidence)


def scheduler_member(ctx: Context, facts: Facts) -> str:
    sched = facts.get("scheduler")
    email = sched.service_account if sched and sched.service_account else None
    return f"serviceAccount:{email or ctx.cfg.job.service_account}"


def missing_run_roles(ctx: Context, facts: Facts) -> list[tuple[str, str]]:
    """(permission, role to grant) the scheduler's identity lacks on the job."""
    member = scheduler_member(ctx, facts)
    policies = [facts.get("project_policy"), facts.get("job_policy")]
    sched = facts.get("scheduler")
    needed = [("run.jobs.run", INVOKER)]
    if sched is not None and sched.overrides:
        needed.append(("run.jobs.runWithOverrides", WITH_OVERRIDES))
    return [(p, r) for p, r in needed if not any(pol.grants(member, p) for pol in policies)]


def invoker(ctx: Context, facts: Facts) -> Check:
    if facts.get("job") is None:
        return Check("job access", SKIP, "no job to check (see job)")
    member = scheduler_member(ctx, facts)
    missing = missing_run_roles(ctx, facts)
    if not missing:
        return Check("job access", OK, f"{member} may run {ctx.cfg.job.name}")
    roles = [r for _, r in missing]
    job, region = ctx.cfg.job.name, ctx.cfg.region
    gcloud = "; ".join(
        f"gcloud run jobs add-iam-policy-binding {job} --region {region} "
        f"--member={member} --role={r}"
        for r in roles
    )
    why = " (the scheduler's body carries overrides)" if WITH_OVERRIDES in roles else ""
    return Check(
        "job access",
        FAIL,
        f"{member} lacks {' and '.join(roles)} on job {job}{why}",
        f"govctl doctor --fix (or: {gcloud})",
        tuple(Action("grant_job", ctx.cfg.job_path, r, member) for r in roles),
    )


def agent_member(ctx: Context, facts: Facts) -> str:
    number = facts.get("project").number
    return f"serviceAccount:service-{number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"


def scheduler_agent(ctx: Context, facts: Facts) -> Check:
    agent = agent_member(ctx, facts)
    if facts.get("project_policy").holds(agent, AGENT_ROLE):
        return Check("scheduler agent", OK, f"{agent.partition(':')[2]} holds {AGENT_ROLE}")
    return Check(
        "scheduler agent",
        FAIL,
        f"Cloud Scheduler's service agent lacks {AGENT_ROLE}: it cannot mint tokens",
        f"govctl doctor --fix (or: gcloud projects add-iam-policy-binding {ctx.project} "
        f"--member={agent} --role={AGENT_ROLE})",
        (Action("grant_project", ctx.project, AGENT_ROLE, agent),),
    )


def _bucket_policy(bucket: str, project: str) -> Policy | str | None:
    """The bucket's policy; :data:`buckets.UNSUPPORTED` on a server without bucket IAM
    (fake-gcs-server); None when it cannot be read (no storage.buckets.getIamPolicy)."""
    try:
        found = buckets.get_policy(bucket, project)
    except GovctlError:
        return None
    return found if isinstance(found, str) else found.policy
