"""The check of the account `deploy --build cloud` builds as (``[build] service_account``).

A build with its own account needs it to exist and be enabled, the caller to be allowed to act
as it, and the account to hold what the build does: write its log (``roles/logging.logWriter``
on the project), push the image (``roles/artifactregistry.writer`` on the repository, or the
project) and read its source (``roles/storage.objectViewer`` on ``gs://PROJECT_cloudbuild``).
What grants them: :mod:`govctl.services.build_account` (`govctl setup`).
"""

from __future__ import annotations

from govctl.gcp import artifacts, buckets, iam
from govctl.gcp.build import staging_bucket
from govctl.gcp.iam import Policy
from govctl.services import build_account as ba
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import FAIL, OK, WARN, Action, Check, Context

NAME = "build account"
WRITE_LOGS = "logging.logEntries.create"
PUSH = "artifactregistry.repositories.uploadArtifacts"
READ = "storage.objects.get"


def _logs(ctx: Context, project: Policy, member: str) -> str | None:
    if project.grants(member, WRITE_LOGS):
        return None
    return (
        f"{ba.LOG_WRITER} on project {ctx.project} (gcloud projects add-iam-policy-binding "
        f"{ctx.project} --member={member} --role={ba.LOG_WRITER})"
    )


def _push(ctx: Context, project: Policy, member: str) -> tuple[str | None, str | None]:
    """What the account lacks to push (with its fix), or why that was not checked."""
    ref = artifacts.parse_image(ctx.cfg.job.image)
    repo = artifacts.repository_policy(ref)
    if repo is None:
        return None, f"repository {ref.repository} does not exist yet"
    if repo.policy.grants(member, PUSH) or project.grants(member, PUSH):
        return None, None
    return (
        f"{ba.PUSHER} on repository {ref.repository} (gcloud artifacts repositories "
        f"add-iam-policy-binding {ref.repository} --location {ref.location} --project "
        f"{ref.project} --member={member} --role={ba.PUSHER})"
    ), None


def _source(ctx: Context, project: Policy, member: str) -> tuple[str | None, str | None]:
    """What the account lacks to read the build source, or why that was not checked."""
    bucket = staging_bucket(ctx.project)
    if project.grants(member, READ):
        return None, None
    if buckets.get(bucket, ctx.project) is None:
        return None, f"gs://{bucket} does not exist yet"
    policy = buckets.get_policy(bucket, ctx.project)
    if not isinstance(policy, buckets.BucketPolicy):
        return None, f"read access to gs://{bucket} (the storage server has no bucket IAM)"
    if policy.policy.grants(member, READ):
        return None, None
    return (
        f"{ba.SOURCE_READER} on gs://{bucket} (gcloud storage buckets add-iam-policy-binding "
        f"gs://{bucket} --member={member} --role={ba.SOURCE_READER})"
    ), None


def _missing_grants(
    ctx: Context, facts: Facts, member: str
) -> tuple[list[str], list[str], list[str]]:
    """What the account lacks (each with its fix command), what it was found to hold, and
    what could not be checked."""
    project: Policy = facts.get("project_policy")
    logs = _logs(ctx, project, member)
    push, source = _push(ctx, project, member), _source(ctx, project, member)
    lacks = [x for x in (logs, push[0], source[0]) if x]
    held = [
        what
        for what, (lack, unchecked) in (
            ("write logs", (logs, None)),
            ("push the image", push),
            ("read the build source", source),
        )
        if lack is None and unchecked is None
    ]
    return lacks, held, [x for x in (push[1], source[1]) if x]


def build_account(ctx: Context, facts: Facts) -> Check:
    email = ctx.cfg.build.service_account
    member = f"serviceAccount:{email}"
    account = iam.service_account(ctx.project, email)
    if account is None:
        return Check(
            NAME, FAIL, f"{email} does not exist: `deploy --build cloud` cannot build",
            f"govctl setup (or: gcloud iam service-accounts create {email.split('@')[0]} "
            f"--project {ctx.project})",
        )  # fmt: skip
    if account.disabled:
        return Check(
            NAME, FAIL, f"{email} is disabled: builds as it fail",
            f"gcloud iam service-accounts enable {email} --project {ctx.project}",
        )  # fmt: skip
    lacks, held, unchecked = _missing_grants(ctx, facts, member)
    refused = ba.act_as(ctx.project, email, account_exists=True)
    if lacks:
        names = ", ".join(item.split(" (", 1)[0] for item in lacks)
        grants = "; ".join(item.split(" (", 1)[1].rstrip(")") for item in lacks)
        fixable = tuple(
            Action("grant_project", ctx.project, ba.LOG_WRITER, member)
            for item in lacks
            if item.startswith(ba.LOG_WRITER)
        )
        return Check(
            NAME, FAIL, f"{email} lacks {names}: `deploy --build cloud` fails",
            f"govctl setup (it grants what is missing), or: {grants}", fixable,
        )  # fmt: skip
    if refused:
        what, _, fix = refused.partition("; ask an owner: ")
        return Check(NAME, FAIL, what, fix)
    if unchecked:
        return Check(
            NAME, WARN, f"{email} may {', '.join(held)}; not checked: {'; '.join(unchecked)}",
            "govctl setup makes and grants what is missing (on Google Cloud)",
        )  # fmt: skip
    return Check(NAME, OK, f"{email} may write logs, read the build source and push the image")
