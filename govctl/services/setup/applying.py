"""Making what the plan says, in its order: the APIs first, all in one call, then each
resource by its kind."""

from __future__ import annotations

from collections.abc import Callable

from govctl.gcp import artifacts, buckets, iam, jobs, services
from govctl.services import build_account, retention
from govctl.services.plan import (
    UNCHANGED,
    UPDATE,
    Applied,
    ResourcePlan,
)
from govctl.services.setup.model import (
    ACCOUNT,
    API,
    BUCKET,
    DISPLAY_NAME,
    IAM,
    INDEX,
    INVOKER,
    REPOSITORY,
    REPOSITORY_DESCRIPTION,
    SetupPlan,
)


class _Report:
    """What apply did, and what it could not do without stopping."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.warnings: list[str] = []


def _make_account(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    iam.create_service_account(p.project, p.account.split("@", 1)[0], DISPLAY_NAME)
    report.done.append(f"created service account {p.account}")


def _make_bucket(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    if r.action == UPDATE:
        buckets.secure(p.bucket, p.project, p.bucket_metageneration)
        report.done.append(
            f"updated bucket gs://{p.bucket}: uniform bucket-level access on, public access "
            "prevention enforced"
        )
    elif buckets.get(p.bucket, p.project) is None:  # made meanwhile, or its API was off
        buckets.create(p.bucket, p.project, p.region)
        report.done.append(f"created bucket gs://{p.bucket} in {p.region}")


def _make_repository(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    ref = p.repository
    if artifacts.get_repository(ref.project, ref.location, ref.repository) is None:
        artifacts.create_repository(
            ref.project, ref.location, ref.repository, description=REPOSITORY_DESCRIPTION
        )
        report.done.append(f"created Artifact Registry repository {r.name}")


def _make_lifecycle_rule(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    if retention.apply_rule(p.project, p.bucket):
        report.done.append(f"added a lifecycle rule to {r.name}")


def _make_cleanup_policies(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    retention.apply_policies(p.repository)
    keep = retention.KEEP_VERSIONS
    report.done.append(
        f"set cleanup policies on {r.name}: older images are deleted, the {keep} most recent "
        f"and the one tagged {retention.DEPLOYED_TAG_PREFIX}JOB (what the job runs) are kept"
    )


def _make_index(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    from govctl.gcp import index

    if index.get_data_store(p.index_path) is None:  # its API may have been off
        index.create_data_store(p.index_path, f"govreposcrape digests (gs://{p.bucket})")
        report.done.append(f"created data store {r.name}")


def _grant_on_bucket(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    role = buckets.JOB_ROLE
    granted = buckets.add_member(p.bucket, role, p.member, p.bucket_policy_etag, p.project)
    if granted is None:
        # The emulator's documented limit (docs/emulator.md, Cloud Storage), not a warning.
        report.done.append(
            f"{role} on gs://{p.bucket}: not applied here: the emulator's storage "
            "(fake-gcs-server) has no bucket IAM; on Google Cloud setup grants it"
        )
    else:
        report.done.append(f"granted {role} to {p.member} on gs://{p.bucket}")


def _grant_on_secret(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    from govctl.gcp import secrets

    secrets.grant_access(p.project, p.secret_ids[r.name], p.member)
    report.done.append(f"granted {r.name.replace(' on ', f' to {p.member} on ', 1)}")


def _grant_on_job(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    jobs.add_member(p.job_path, INVOKER, p.member, p.job_policy_etag)
    report.done.append(f"granted {INVOKER} to {p.member} on job {jobs.job_id(p.job_path)}")


def _grant(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    if r.name.endswith(f"gs://{p.bucket}"):
        _grant_on_bucket(p, r, report)
    elif r.name in p.secret_ids:
        _grant_on_secret(p, r, report)
    else:
        _grant_on_job(p, r, report)


# How each kind of resource is made; APIs are enabled first, all in one call.
_MAKE: dict[str, Callable[[SetupPlan, ResourcePlan, _Report], None]] = {
    ACCOUNT: _make_account,
    BUCKET: _make_bucket,
    REPOSITORY: _make_repository,
    retention.LIFECYCLE: _make_lifecycle_rule,
    retention.CLEANUP: _make_cleanup_policies,
    INDEX: _make_index,
    IAM: _grant,
}


def apply(p: SetupPlan) -> Applied:
    """Make the plan's changes, in order; writes nothing when it has problems."""
    if p.plan.problems:
        raise p.plan.refusal("set up")
    todo = [r for r in p.plan.resources if r.action != UNCHANGED]
    report = _Report()
    apis = [r.name for r in todo if r.kind == API]
    if apis:
        services.enable(p.project, apis)
        report.done.append(f"enabled {', '.join(apis)}")
    for r in todo:
        if p.build is not None and p.build.owns(r):
            done, warning = build_account.apply(p.build, r)
            report.done += [done] if done else []
            report.warnings += [warning] if warning else []
        elif r.kind != API:
            _MAKE[r.kind](p, r, report)
    return Applied(tuple(report.done), tuple(report.warnings))
