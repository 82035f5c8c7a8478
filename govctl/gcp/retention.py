"""What the pipeline keeps and for how long: the bucket's lifecycle rules, the image
repository's cleanup policies, and the tag that marks the image the job runs.

Cloud Storage lifecycle (https://cloud.google.com/storage/docs/lifecycle): a bucket carries a
list of rules, each an action and conditions (``age`` in days, ``matchesPrefix``, …); rules
have no id, so a rule is recognised by its content. Artifact Registry cleanup policies
(https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy): a map of policy
id to a DELETE or KEEP policy on ``Repository.cleanup_policies``, set with UpdateRepository.
Every call has a deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from govctl.errors import CloudError
from govctl.gcp import clients
from govctl.gcp.artifacts import ADMIN_FIX, READER_FIX, ImageRef
from govctl.gcp.buckets import ADMIN_FIX as BUCKET_ADMIN_FIX
from govctl.gcp.errors import translate

TIMEOUT_S = 30.0


# -- Cloud Storage lifecycle -----------------------------------------------------------------


@dataclass(frozen=True)
class BucketRules:
    rules: tuple[dict[str, Any], ...]  # as the JSON API has them: {"action": …, "condition": …}
    metageneration: int | None


def bucket_rules(project: str, bucket: str) -> BucketRules | None:
    """The bucket's lifecycle rules; None when the bucket does not exist."""
    from google.api_core import exceptions as gexc

    client = clients.storage_client(project)
    with translate(f"read the lifecycle rules of gs://{bucket}"):
        try:
            found = client.get_bucket(bucket, timeout=TIMEOUT_S)
        except gexc.NotFound:
            return None
    rules = tuple(dict(r) for r in found.lifecycle_rules)
    return BucketRules(rules, found.metageneration)


def set_bucket_rules(
    project: str, bucket: str, rules: tuple[dict[str, Any], ...], metageneration: int | None
) -> None:
    """Replace the bucket's lifecycle rules; refused when the bucket changed since
    ``metageneration`` was read."""
    from google.api_core import exceptions as gexc

    target = clients.storage_client(project).bucket(bucket)
    target.lifecycle_rules = list(rules)
    with translate(f"set the lifecycle rules of gs://{bucket}", denied=BUCKET_ADMIN_FIX):
        try:
            target.patch(if_metageneration_match=metageneration, timeout=TIMEOUT_S)
        except gexc.PreconditionFailed:
            raise CloudError(
                f"gs://{bucket} changed since the plan was made",
                fix="rerun `govctl setup` to see the new state",
            ) from None


# -- Artifact Registry cleanup policies --------------------------------------------------------


@dataclass(frozen=True)
class CleanupPolicy:
    """One cleanup policy, as govctl compares them (durations in seconds)."""

    id: str
    action: str  # DELETE or KEEP
    keep_count: int | None = None  # set: a "keep most recent versions" policy
    tag_state: str | None = None  # TAGGED, UNTAGGED, ANY
    tag_prefixes: tuple[str, ...] = ()
    package_prefixes: tuple[str, ...] = ()
    older_than_s: int | None = None

    def describe(self) -> str:
        """One line an operator reads: "keep the 5 most recent versions"."""
        if self.keep_count is not None:
            return f"keep the {self.keep_count} most recent versions"
        what = []
        if self.tag_prefixes:
            what.append("tagged " + " or ".join(f"{p}*" for p in self.tag_prefixes))
        elif self.tag_state and self.tag_state != "ANY":
            what.append(self.tag_state.lower())
        if self.package_prefixes:
            what.append("of " + " or ".join(self.package_prefixes))
        if self.older_than_s:
            what.append(f"older than {self.older_than_s // 86400} days")
        verb = "keep" if self.action == "KEEP" else "delete"
        subject = "versions" if what else "every version"
        return " ".join([verb, subject, *what])


@dataclass(frozen=True)
class RepositoryPolicies:
    policies: dict[str, CleanupPolicy] = field(default_factory=dict)
    dry_run: bool = False


def _from_api(key: str, pb: Any) -> CleanupPolicy:
    from google.cloud import artifactregistry_v1 as ar

    action = ar.CleanupPolicy.Action(pb.action).name
    if "most_recent_versions" in pb:
        recent = pb.most_recent_versions
        return CleanupPolicy(key, action, keep_count=recent.keep_count,
                             package_prefixes=tuple(recent.package_name_prefixes))  # fmt: skip
    cond = pb.condition
    state = ar.CleanupPolicyCondition.TagState(cond.tag_state).name if "tag_state" in cond else None
    older = int(cond.older_than.total_seconds()) if "older_than" in cond else None
    return CleanupPolicy(key, action, tag_state=state, tag_prefixes=tuple(cond.tag_prefixes),
                         package_prefixes=tuple(cond.package_name_prefixes),
                         older_than_s=older)  # fmt: skip


def _to_api(policy: CleanupPolicy) -> Any:
    from datetime import timedelta

    from google.cloud import artifactregistry_v1 as ar

    action = getattr(ar.CleanupPolicy.Action, policy.action)
    if policy.keep_count is not None:
        recent = ar.CleanupPolicyMostRecentVersions(
            keep_count=policy.keep_count, package_name_prefixes=list(policy.package_prefixes)
        )
        return ar.CleanupPolicy(id=policy.id, action=action, most_recent_versions=recent)
    cond = ar.CleanupPolicyCondition(
        tag_prefixes=list(policy.tag_prefixes),
        package_name_prefixes=list(policy.package_prefixes),
    )
    if policy.tag_state:
        cond.tag_state = getattr(ar.CleanupPolicyCondition.TagState, policy.tag_state)
    if policy.older_than_s is not None:
        cond.older_than = timedelta(seconds=policy.older_than_s)
    return ar.CleanupPolicy(id=policy.id, action=action, condition=cond)


def _name(project: str, location: str, repository: str) -> str:
    return f"projects/{project}/locations/{location}/repositories/{repository}"


def cleanup_policies(project: str, location: str, repository: str) -> RepositoryPolicies | None:
    """The repository's cleanup policies; None when the repository does not exist."""
    from google.api_core import exceptions as gexc

    name = _name(project, location, repository)
    with translate(f"read the cleanup policies of {name}", denied=READER_FIX):
        try:
            repo = clients.artifact_registry().get_repository(name=name, timeout=TIMEOUT_S)
        except gexc.NotFound:
            return None
    policies = {k: _from_api(k, v) for k, v in repo.cleanup_policies.items()}
    return RepositoryPolicies(policies, bool(repo.cleanup_policy_dry_run))


def set_cleanup_policies(
    project: str,
    location: str,
    repository: str,
    policies: Mapping[str, CleanupPolicy],
    *,
    dry_run_off: bool = True,
) -> None:
    """Set the repository's cleanup policies to ``policies`` (a whole map, others' included:
    the mask replaces the map, AIP-134) and, with ``dry_run_off``, turn the dry run off so
    they delete."""
    from google.cloud import artifactregistry_v1 as ar
    from google.protobuf import field_mask_pb2

    name = _name(project, location, repository)
    repo = ar.Repository(name=name, cleanup_policy_dry_run=False)
    for key, policy in policies.items():
        repo.cleanup_policies[key] = _to_api(policy)
    paths = ["cleanup_policies", *(["cleanup_policy_dry_run"] if dry_run_off else [])]
    mask = field_mask_pb2.FieldMask(paths=paths)
    with translate(f"set the cleanup policies of {name}", denied=ADMIN_FIX):
        clients.artifact_registry().update_repository(
            repository=repo, update_mask=mask, timeout=TIMEOUT_S
        )


def tag_version(ref: ImageRef, tag: str) -> bool:
    """Point ``tag`` at the image ``ref`` names by digest (created, or moved from the version it
    named); False when it named that version already."""
    from google.api_core import exceptions as gexc
    from google.cloud import artifactregistry_v1 as ar

    assert ref.digest, "tag_version needs an image by digest"
    package = f"{ref.repository_name}/packages/{ref.image.replace('/', '%2F')}"
    version = f"{package}/versions/{ref.digest}"
    client = clients.artifact_registry()
    with translate(f"tag {ref} as {tag}", denied=ADMIN_FIX):
        try:
            current = client.get_tag(name=f"{package}/tags/{tag}", timeout=TIMEOUT_S)
        except gexc.NotFound:
            client.create_tag(parent=package, tag_id=tag, tag=ar.Tag(version=version),
                              timeout=TIMEOUT_S)  # fmt: skip
            return True
        if current.version == version:
            return False
        from google.protobuf import field_mask_pb2

        client.update_tag(tag=ar.Tag(name=current.name, version=version),
                          update_mask=field_mask_pb2.FieldMask(paths=["version"]),
                          timeout=TIMEOUT_S)  # fmt: skip
        return True
