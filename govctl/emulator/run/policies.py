"""IAM policies on Cloud Run jobs: the checks IAM applies to a job policy's bindings.

The protocol (etags, versions, the three RPCs) is :class:`govctl.emulator.iam.policy.IamPolicies`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from google.iam.v1 import policy_pb2

from govctl.emulator.iam.policy import IamPolicies, without_empty
from govctl.emulator.rpc import invalid_argument
from govctl.emulator.run import names

if TYPE_CHECKING:
    from govctl.emulator.cloud import Service

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


class JobPolicies(IamPolicies):
    """``GetIamPolicy`` / ``SetIamPolicy`` / ``TestIamPermissions`` on ``…/jobs/J``. The
    emulator's caller owns every project: it holds each Cloud Run permission."""

    permission_prefix = "run."

    def __init__(self, service: Service, require_job: Callable[[str], object]) -> None:
        super().__init__(service)
        self._require_job = require_job

    def check_name(self, resource: str) -> None:
        names.parse_job(resource, "resource")

    def check_exists(self, resource: str) -> None:
        self._require_job(resource)

    def bindings(self, bindings: Sequence[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
        for i, binding in enumerate(bindings):
            if not _ROLE.fullmatch(binding.role):
                raise invalid_argument(f"bindings[{i}].role: invalid role {binding.role!r}")
            for member in binding.members:
                known = member in _MEMBER_WORDS or member.startswith(_MEMBER_PREFIXES)
                if not known or any(c.isspace() for c in member):
                    raise invalid_argument(f"bindings[{i}]: invalid member {member!r}")
        return without_empty(bindings)

    def check_permissions(self, permissions: Sequence[str]) -> None:
        for perm in permissions:
            if "*" in perm:
                raise invalid_argument(f"Permissions with wildcards are not allowed: {perm!r}")
