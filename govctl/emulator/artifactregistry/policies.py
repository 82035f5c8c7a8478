"""The IAM policy of each Artifact Registry repository.

``GetIamPolicy`` / ``SetIamPolicy`` / ``TestIamPermissions`` on
``projects/P/locations/L/repositories/R`` (google/devtools/artifactregistry/v1/service.proto);
the protocol (etags, versions) is :class:`govctl.emulator.iam.policy.IamPolicies`. A role
granted here applies to the one repository ("repository-specific permissions",
https://cloud.google.com/artifact-registry/docs/access-control); an emulated Cloud Build asks
:meth:`ArtifactRegistryService.may_push` (this policy, then the project's) before it records a
pushed image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from google.iam.v1 import policy_pb2

from govctl.emulator.iam import roles
from govctl.emulator.iam.policy import IamPolicies, without_empty
from govctl.emulator.iam.projects import check_member
from govctl.emulator.rpc import invalid_argument

if TYPE_CHECKING:
    from govctl.emulator.cloud import Service


class RepositoryPolicies(IamPolicies):
    """The emulator's caller owns every project: it holds each Artifact Registry permission."""

    permission_prefix = "artifactregistry."

    def __init__(
        self,
        service: Service,
        check_name: Callable[[str], object],
        require_repo: Callable[[str], object],
    ) -> None:
        super().__init__(service)
        self._check_name = check_name
        self._require_repo = require_repo

    def check_name(self, resource: str) -> None:
        self._check_name(resource)

    def check_exists(self, resource: str) -> None:
        self._require_repo(resource)

    def bindings(self, bindings: Sequence[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
        for i, binding in enumerate(bindings):
            if not roles.is_known_role(binding.role):
                raise invalid_argument(f"bindings[{i}].role: Role {binding.role} is not supported.")
            for member in binding.members:
                check_member(member)
        return without_empty(bindings)
