"""The pipeline cleans up after itself: what `setup` puts in place so that run files and old
images do not pile up, and what `doctor` checks of it.

- **Run files.** The job keeps run reports under ``_runs/{execution}/`` and content-addressed
  feed snapshots under ``_runs/feeds/``; docs/ingestion.md ("What may expire") says ``_runs/``
  may go after 30 days. A Cloud Storage lifecycle rule deletes them: action ``Delete``,
  conditions ``age: 30`` and ``matchesPrefix: ["_runs/"]``
  (https://cloud.google.com/storage/docs/lifecycle). Digests and ``_state/`` never expire.
- **Images.** Each ``deploy --build`` pushes an image of ~360 MB; Artifact Registry bills
  storage above 0.5 GB. Three cleanup policies on the job image's package
  (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy): delete every
  version, except (keep policies win) the :data:`KEEP_VERSIONS` most recent and the version
  tagged ``deployed-JOB`` — the tag ``govctl deploy`` moves to the digest the job runs, which
  is pinned by digest and may be older than the most recent few after a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from govctl.gcp import retention
from govctl.gcp.artifacts import ImageRef
from govctl.gcp.retention import CleanupPolicy
from govctl.services.plan import CREATE, UNCHANGED, UPDATE, Change, ResourcePlan

RUNS_PREFIX = "_runs/"
RUNS_DAYS = 30
RUNS_RULE: dict[str, Any] = {
    "action": {"type": "Delete"},
    "condition": {"age": RUNS_DAYS, "matchesPrefix": [RUNS_PREFIX]},
}
KEEP_VERSIONS = 5
DEPLOYED_TAG_PREFIX = "deployed-"
LIFECYCLE = "lifecycle rule"  # ResourcePlan.kind
CLEANUP = "cleanup policy"


def deployed_tag(job_name: str) -> str:
    """The tag deploy moves to the image the job runs (Docker tags: at most 128 characters)."""
    return (DEPLOYED_TAG_PREFIX + job_name)[:128]


def desired_policies(image: str) -> dict[str, CleanupPolicy]:
    """govctl's cleanup policies for the package ``image`` (the image name in the repository)."""
    package = (image,)
    return {
        "govctl-delete-older": CleanupPolicy(
            "govctl-delete-older", "DELETE", tag_state="ANY", package_prefixes=package
        ),
        "govctl-keep-recent": CleanupPolicy(
            "govctl-keep-recent", "KEEP", keep_count=KEEP_VERSIONS, package_prefixes=package
        ),
        "govctl-keep-deployed": CleanupPolicy(
            "govctl-keep-deployed",
            "KEEP",
            tag_state="TAGGED",
            tag_prefixes=(DEPLOYED_TAG_PREFIX,),
            package_prefixes=package,
        ),
    }


def expires_runs(rule: dict[str, Any]) -> bool:
    """Whether a lifecycle rule deletes run files: a Delete whose ``matchesPrefix`` takes in
    ``_runs/`` (an operator's own age is respected)."""
    condition = rule.get("condition") or {}
    prefixes = condition.get("matchesPrefix") or []
    return (rule.get("action") or {}).get("type") == "Delete" and any(
        RUNS_PREFIX.startswith(p) for p in prefixes
    )


def rule_label(bucket: str) -> str:
    return f"gs://{bucket}: delete {RUNS_PREFIX} after {RUNS_DAYS} days"


def plan_rule(project: str, bucket: str, readable: bool) -> ResourcePlan:
    """The run-prefix lifecycle rule: created with the bucket, added when missing."""
    label = rule_label(bucket)
    found = retention.bucket_rules(project, bucket) if readable else None
    if found is not None and any(expires_runs(r) for r in found.rules):
        return ResourcePlan(LIFECYCLE, label, UNCHANGED)
    change = Change("rule", None, f"delete {RUNS_PREFIX}* {RUNS_DAYS} days after written")
    return ResourcePlan(LIFECYCLE, label, CREATE, (change,))


def apply_rule(project: str, bucket: str) -> bool:
    """Add the rule (the bucket's other rules kept); False when one is there already."""
    found = retention.bucket_rules(project, bucket)
    if found is None or any(expires_runs(r) for r in found.rules):
        return False
    retention.set_bucket_rules(project, bucket, (*found.rules, RUNS_RULE), found.metageneration)
    return True


def policies_label(ref: ImageRef) -> str:
    return f"{ref.repository} ({ref.location}): {ref.image}"


def plan_policies(ref: ImageRef, readable: bool) -> ResourcePlan:
    """govctl's cleanup policies on the image repository (other policies are left alone)."""
    wanted = desired_policies(ref.image)
    found = retention.cleanup_policies(ref.project, ref.location, ref.repository) if readable \
        else None  # fmt: skip
    label = policies_label(ref)
    if found is None:
        changes = tuple(Change(k, None, p.describe()) for k, p in wanted.items())
        return ResourcePlan(CLEANUP, label, CREATE, changes)
    changes = tuple(
        Change(k, found.policies[k].describe() if k in found.policies else None, p.describe())
        for k, p in wanted.items()
        if found.policies.get(k) != p
    )
    if found.dry_run:
        changes += (Change("dry_run", "on", "off"),)
    return ResourcePlan(CLEANUP, label, UPDATE if changes else UNCHANGED, changes)


def apply_policies(ref: ImageRef) -> None:
    found = retention.cleanup_policies(ref.project, ref.location, ref.repository)
    merged = dict(found.policies) if found is not None else {}
    merged.update(desired_policies(ref.image))
    retention.set_cleanup_policies(ref.project, ref.location, ref.repository, merged)


# -- what destroy removes, when the bucket or the repository stays ---------------------------


def ours_in_bucket(project: str, bucket: str) -> bool:
    """Whether the bucket carries setup's rule exactly (an operator's own rule on ``_runs/``,
    another age say, is theirs: setup left it alone and so does destroy)."""
    found = retention.bucket_rules(project, bucket)
    return found is not None and RUNS_RULE in found.rules


def remove_rule(project: str, bucket: str) -> bool:
    """Take setup's rule off the bucket, its other rules kept; False when it was not there."""
    found = retention.bucket_rules(project, bucket)
    if found is None or RUNS_RULE not in found.rules:
        return False
    rest = tuple(r for r in found.rules if r != RUNS_RULE)
    retention.set_bucket_rules(project, bucket, rest, found.metageneration)
    return True


def ours_in_repository(ref: ImageRef) -> list[str]:
    """The ids of govctl's cleanup policies for the image's package on its repository."""
    found = retention.cleanup_policies(ref.project, ref.location, ref.repository)
    if found is None:
        return []
    return sorted(set(found.policies) & set(desired_policies(ref.image)))


def remove_policies(ref: ImageRef) -> list[str]:
    """Take govctl's cleanup policies off the repository, others (and the dry run) as they
    are; the ids removed."""
    found = retention.cleanup_policies(ref.project, ref.location, ref.repository)
    if found is None:
        return []
    ours = set(desired_policies(ref.image))
    rest = {k: v for k, v in found.policies.items() if k not in ours}
    retention.set_cleanup_policies(
        ref.project, ref.location, ref.repository, rest, dry_run_off=False
    )
    return sorted(set(found.policies) & ours)


def mark_deployed(ref: ImageRef, job_name: str) -> bool:
    """Move the job's ``deployed-JOB`` tag to the image it now runs (by digest), so the keep
    policy holds it whatever the most recent versions are."""
    if not ref.digest:
        return False
    return retention.tag_version(ref, deployed_tag(job_name))


# -- what doctor says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    ok: bool
    evidence: str
    fix: str | None = None


def check_rule(project: str, bucket: str) -> Finding | None:
    """None when the bucket does not exist (the bucket check says so)."""
    found = retention.bucket_rules(project, bucket)
    if found is None:
        return None
    ours = [r for r in found.rules if expires_runs(r)]
    if ours:
        age = (ours[0].get("condition") or {}).get("age")
        after = f"after {age} days" if age is not None else "by its other conditions"
        return Finding(True, f"gs://{bucket}: {RUNS_PREFIX} run files expire {after}")
    return Finding(
        False,
        f"gs://{bucket} has no lifecycle rule for {RUNS_PREFIX}: run reports and feed snapshots "
        "are kept forever",
        "govctl setup (adds a rule deleting _runs/ after 30 days)",
    )


def check_policies(ref: ImageRef) -> Finding | None:
    """None when the repository does not exist (the image check says so)."""
    found = retention.cleanup_policies(ref.project, ref.location, ref.repository)
    if found is None:
        return None
    deletes = [p for p in found.policies.values() if p.action == "DELETE"]
    where = f"{ref.repository_name.rsplit('/', 1)[-1]} ({ref.location})"
    if not deletes:
        return Finding(
            False,
            f"Artifact Registry repository {where} has no cleanup policy: every pushed image "
            "is kept (storage is billed above 0.5 GB)",
            "govctl setup (keeps the 5 most recent images and the one the job runs)",
        )
    if found.dry_run:
        return Finding(
            False,
            f"the cleanup policies of {where} run as a dry run: nothing is deleted",
            "govctl setup (turns the dry run off)",
        )
    keeps = sorted(p.describe() for p in found.policies.values() if p.action == "KEEP")
    return Finding(True, f"{where}: old images are deleted; " + ("; ".join(keeps) or "none kept"))
