"""The IAM policy of each secret: which bindings Secret Manager accepts.

The protocol (etags, versions, the three RPCs) is :class:`govctl.emulator.iam.policy.IamPolicies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from google.iam.v1 import policy_pb2

from govctl.emulator.iam import roles
from govctl.emulator.iam.policy import IamPolicies, without_empty
from govctl.emulator.rpc import invalid_argument

if TYPE_CHECKING:
    from govctl.emulator.cloud import Service


class SecretPolicies(IamPolicies):
    """The emulator's caller owns every project: it holds each Secret Manager permission."""

    permission_prefix = "secretmanager."

    def __init__(self, service: Service, require_secret: Callable[[str], object]) -> None:
        super().__init__(service)
        self._require_secret = require_secret

    def check_exists(self, resource: str) -> None:
        self._require_secret(resource)

    def bindings(self, bindings: Sequence[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
        for i, binding in enumerate(bindings):
            if not roles.is_known_role(binding.role):
                raise invalid_argument(f"bindings[{i}].role: Role {binding.role} is not supported.")
        return without_empty(bindings)
