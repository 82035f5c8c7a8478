"""Artifact Registry cleanup policies: which versions a repository's policies delete.

Sources (docs/emulator/artifactregistry.md cites them again):

- https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy-overview: delete
  policies select versions to delete; keep policies (a condition, or "keep most recent
  versions") exempt versions from deletion, and a version matching both is **kept**; at most
  10 policies per repository; a background job applies them, changes take effect "within
  about a day"; a dry run deletes nothing.
- googleapis ``google/devtools/artifactregistry/v1/repository.proto``: ``CleanupPolicy`` (``id``,
  ``action`` DELETE/KEEP, ``condition`` or ``most_recent_versions``, the latter "may only be
  specified with a Keep action"); ``CleanupPolicyCondition``, whose set fields must all be
  satisfied (tag state, tag / version name / package name prefixes — any prefix matches —
  ``older_than``, ``newer_than``); ``cleanup_policies`` keys "under 128 characters";
  ``cleanup_policy_dry_run`` "prevents the cleanup pipeline from deleting versions".

A Docker image here is one version: its package is the image name, its version name the
digest (``sha256:…``), its age counted from ``upload_time`` (no source names the timestamp
the age is measured from; an image's upload is when its version came to be).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from google.cloud import artifactregistry_v1 as ar

from govctl.emulator.rpc import invalid_argument

MAX_POLICIES = 10  # cleanup-policy-overview: "up to 10 cleanup policies" per repository
MAX_ID = 127  # repository.proto: keys "under 128 characters in length"

Action = ar.CleanupPolicy.Action
TagState = ar.CleanupPolicyCondition.TagState


def validate(policies: Mapping[str, Any]) -> None:
    """The documented limits of ``Repository.cleanup_policies`` (raw protobuf values)."""
    if len(policies) > MAX_POLICIES:
        raise invalid_argument(
            f"A repository may have at most {MAX_POLICIES} cleanup policies; "
            f"{len(policies)} were given."
        )
    for key, policy in policies.items():
        if not key or len(key) > MAX_ID:
            raise invalid_argument(
                f"Invalid cleanup policy id {key!r}: it must be 1 to {MAX_ID} characters."
            )
        if policy.HasField("most_recent_versions") and policy.action != Action.KEEP:
            raise invalid_argument(
                f"Cleanup policy {key!r}: most_recent_versions may only be specified with a "
                "KEEP action."
            )
        recent = policy.most_recent_versions
        if policy.HasField("most_recent_versions") and recent.keep_count < 0:
            raise invalid_argument(f"Cleanup policy {key!r}: keep_count must not be negative.")


def package_of(image: Any) -> str:
    """The image name (package) of a stored ``DockerImage``: ``ingestion`` of
    ``…/dockerImages/ingestion@sha256:…``."""
    return unquote(image.name.rsplit("/dockerImages/", 1)[1].rsplit("@", 1)[0])


def _version_of(image: Any) -> str:
    return str(image.name.rsplit("@", 1)[1])


def _any_prefix(values: Iterable[str], prefixes: Iterable[str]) -> bool:
    wanted = list(prefixes)
    return any(v.startswith(p) for v in values for p in wanted)


def _age(image: Any, now: datetime) -> timedelta:
    uploaded: datetime = image.upload_time.ToDatetime(tzinfo=now.tzinfo)
    return now - uploaded


def _tags_match(cond: Any, tags: list[str]) -> bool:
    state = cond.tag_state if cond.HasField("tag_state") else TagState.ANY
    if state == TagState.TAGGED and not tags:
        return False
    if state == TagState.UNTAGGED and tags:
        return False
    return not cond.tag_prefixes or _any_prefix(tags, cond.tag_prefixes)


def matches(cond: Any, image: Any, now: datetime) -> bool:
    """Whether ``image`` satisfies every field set in the ``CleanupPolicyCondition``."""
    if not _tags_match(cond, list(image.tags)):
        return False
    if cond.version_name_prefixes and not _any_prefix([_version_of(image)],
                                                      cond.version_name_prefixes):  # fmt: skip
        return False
    if cond.package_name_prefixes and not _any_prefix([package_of(image)],
                                                      cond.package_name_prefixes):  # fmt: skip
        return False
    age = _age(image, now)
    if cond.HasField("older_than") and not age > cond.older_than.ToTimedelta():
        return False
    return not (cond.HasField("newer_than") and not age < cond.newer_than.ToTimedelta())


def _most_recent(recent: Any, images: list[Any]) -> set[str]:
    """Per package (those ``package_name_prefixes`` names, or all), the ``keep_count`` most
    recently uploaded versions."""
    by_package: dict[str, list[Any]] = {}
    for image in images:
        pkg = package_of(image)
        if not recent.package_name_prefixes or _any_prefix([pkg], recent.package_name_prefixes):
            by_package.setdefault(pkg, []).append(image)
    kept: set[str] = set()
    for group in by_package.values():
        group.sort(key=lambda i: i.upload_time.ToNanoseconds(), reverse=True)
        kept.update(i.name for i in group[: recent.keep_count])
    return kept


def selected(policies: Mapping[str, Any], images: list[Any], now: datetime) -> list[str]:
    """The names of the images the policies delete: those a DELETE policy matches and no KEEP
    policy keeps (keep wins). A policy without an action neither keeps nor deletes."""
    doomed: set[str] = set()
    kept: set[str] = set()
    for policy in policies.values():
        if policy.action == Action.DELETE and policy.HasField("condition"):
            doomed.update(i.name for i in images if matches(policy.condition, i, now))
        elif policy.action == Action.KEEP and policy.HasField("most_recent_versions"):
            kept |= _most_recent(policy.most_recent_versions, images)
        elif policy.action == Action.KEEP and policy.HasField("condition"):
            kept.update(i.name for i in images if matches(policy.condition, i, now))
    return sorted(doomed - kept)
