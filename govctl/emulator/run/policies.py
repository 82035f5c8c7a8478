"""IAM policies on Cloud Run jobs: versions, etags and the checks IAM applies to bindings."""

from __future__ import annotations

import os
import re

from google.iam.v1 import policy_pb2

from govctl.emulator.iam import policy as iam_policy
from govctl.emulator.rpc import invalid_argument

# The etag IAM gives a resource whose policy was never set (base64 "ACAB").
EMPTY_ETAG = b"\x00\x20\x01"
_ROLE = re.compile(r"^(roles/[A-Za-z0-9_.]+|(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+)$")
_MEMBER_PREFIXES = (
    "user:",
    "serviceAccount:",
    "group:",
    "domain:",
    "principal://",
    "principalSet://",
    "deleted:",
)
_MEMBER_WORDS = ("allUsers", "allAuthenticatedUsers")


def empty_policy() -> policy_pb2.Policy:
    return policy_pb2.Policy(version=1, etag=EMPTY_ETAG)


def check_requested_version(version: int) -> None:
    if version not in (0, 1, 3):
        raise invalid_argument(f"Invalid requested_policy_version {version}: must be 0, 1 or 3")


def checked_update(current: policy_pb2.Policy, new: policy_pb2.Policy) -> policy_pb2.Policy:
    """The policy SetIamPolicy stores: etag checked (stale -> ABORTED), bindings validated."""
    iam_policy.check_etag(new, current)
    if new.version not in (0, 1, 3):
        raise invalid_argument(f"Invalid policy version {new.version}: must be 1 or 3")
    for i, binding in enumerate(new.bindings):
        if not _ROLE.fullmatch(binding.role):
            raise invalid_argument(f"bindings[{i}].role: invalid role {binding.role!r}")
        if not binding.members:
            raise invalid_argument(f"bindings[{i}]: a binding needs at least one member")
        for member in binding.members:
            known = member in _MEMBER_WORDS or member.startswith(_MEMBER_PREFIXES)
            if not known or any(c.isspace() for c in member):
                raise invalid_argument(f"bindings[{i}]: invalid member {member!r}")
    version = iam_policy.stored_version(new.bindings)
    if version == 3 and new.version != 3:
        raise invalid_argument("A policy with conditions must use version 3")
    stored = iam_policy.copy(new)
    stored.version = version
    stored.etag = os.urandom(8)
    return stored


def for_version(policy: policy_pb2.Policy, requested: int) -> policy_pb2.Policy:
    if requested < 3 and iam_policy.is_conditional(policy.bindings):
        raise invalid_argument(
            "The policy has conditional bindings; request policy version 3 to read it"
        )
    return iam_policy.copy(policy)
