"""``google.iam.v1.IAMPolicy`` on any resource: one implementation of Get/Set/TestIamPermissions.

Resource Manager projects, Cloud Run jobs and Secret Manager secrets all serve GetIamPolicy /
SetIamPolicy / TestIamPermissions. The read-modify-write protocol is IAM's own and lives here
once (google/iam/v1/iam_policy.proto, policy.proto; cloud.google.com/iam/docs/policies):

- an etag that is not the stored one is ABORTED; no etag is a blind write (``Policy.etag``);
- versions: a request names 0, 1 or 3; a policy with a conditional binding must be set with
  version 3 and is stored as version 3 (else 1); reading it needs
  ``requested_policy_version`` 3 ("Any operation that affects conditional role bindings must
  specify version 3", cloud.google.com/iam/docs/policies#versions);
- ``update_mask`` of SetIamPolicy, where honoured: only ``bindings``, ``etag``,
  ``audit_configs`` and ``version``; without one, ``bindings`` and ``etag`` (iam_policy.proto);
- a service account a SetIamPolicy adds must exist: Google refuses the policy with
  INVALID_ARGUMENT "Service account EMAIL does not exist." (as gcloud prints it, e.g.
  GoogleCloudPlatform/generative-ai#944, GoogleCloudPlatform/cdmc#50). Only accounts made in a
  project (``NAME@PROJECT.iam.gserviceaccount.com``) are checked: Google's own (service agents,
  ``gcp-sa-*``, the Compute and Cloud Build defaults) are not modelled and are let through. A
  member already in the policy is not checked again: Google shows a deleted account's member
  as ``deleted:serviceAccount:…`` (policy.proto), which the emulator does not rewrite.

What differs by resource is a subclass of :class:`IamPolicies` overriding the hooks:
``check_name`` / ``check_exists`` (the resource), ``bindings`` (what a valid binding is, and how
IAM normalises them), ``check_permissions`` and ``granted`` (TestIamPermissions), ``current`` /
``save`` (where the policy lives and how its etag is made). This is a plain helper module:
services import it, as they import :mod:`govctl.emulator.rpc`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from google.iam.v1 import iam_policy_pb2, policy_pb2

from govctl.emulator.apis import Handler
from govctl.emulator.rpc import aborted, invalid_argument
from govctl.emulator.state import from_jsonable, to_jsonable
from govctl.emulator.store import check_etag, copy

if TYPE_CHECKING:
    from govctl.emulator.cloud import Service

# IAM's answer to a SetIamPolicy whose etag is not the stored one.
STALE_ETAG = (
    "There were concurrent policy changes. Please retry the whole read-modify-write "
    "with exponential backoff."
)
# The etag IAM gives a resource whose policy was never set (base64 "ACAB").
EMPTY_ETAG = b"\x00\x20\x01"
VERSIONS = (0, 1, 3)
_MASKABLE = {"bindings", "etag", "audit_configs", "auditConfigs", "version"}


# A service account made in a project: NAME@PROJECT.iam.gserviceaccount.com, the project id
# as cloud.google.com/resource-manager/docs/creating-managing-projects allows it; not a
# service agent's gcp-sa-* domain.
_PROJECT_ACCOUNT = re.compile(
    r"serviceAccount:([a-z][-a-z0-9]*@(?!gcp-sa-)[a-z][-a-z0-9]{4,28}[a-z0-9]"
    r"\.iam\.gserviceaccount\.com)"
)


def members(bindings: Iterable[policy_pb2.Binding]) -> set[str]:
    return {m for b in bindings for m in b.members}


def empty_policy() -> policy_pb2.Policy:
    return policy_pb2.Policy(version=1, etag=EMPTY_ETAG)


def is_conditional(bindings: Iterable[policy_pb2.Binding]) -> bool:
    return any(b.HasField("condition") for b in bindings)


def stored_version(bindings: Iterable[policy_pb2.Binding]) -> int:
    """The version IAM stores: 3 when a binding has a condition, else 1."""
    return 3 if is_conditional(bindings) else 1


def without_empty(bindings: Iterable[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
    """The bindings that name at least one member.

    Resource Manager drops a binding whose members are all gone rather than refuse the policy
    (the response to a SetIamPolicy with ``{"role": "roles/editor"}`` and no members leaves the
    role out: hashicorp/terraform-provider-google#4439 and #3606, with the API's requests and
    responses). So a client that removes a role's last member (read, remove, write back) works.
    Cloud Storage bucket IAM refuses such a binding instead (#3606); for Cloud Run and Secret
    Manager policies no source says, and the emulator treats them as Resource Manager's.
    """
    return [b for b in bindings if b.members]


class IamPolicies:
    """The IAM policies of one kind of resource, and the three RPCs on them.

    The default hooks keep policies in :attr:`by_resource` by resource name (etags random, an
    unset policy :func:`empty_policy`), accept every binding as given, and grant the
    emulator's caller every permission that starts with :attr:`permission_prefix`.
    """

    permission_prefix = ""
    honours_update_mask = False
    applies_requested_version = True

    def __init__(self, service: Service) -> None:
        self.service = service
        self.by_resource: dict[str, policy_pb2.Policy] = {}

    # hooks ------------------------------------------------------------------------------------
    def check_name(self, resource: str) -> None:
        """INVALID_ARGUMENT for a malformed resource name (called without the lock)."""

    def check_exists(self, resource: str) -> None:
        """NOT_FOUND (in the API's words) when the resource does not exist (lock held)."""

    def bindings(self, bindings: Sequence[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
        """The bindings to store (validated and normalised); called without the lock."""
        return list(bindings)

    def check_permissions(self, permissions: Sequence[str]) -> None:
        """INVALID_ARGUMENT for a permission TestIamPermissions refuses."""

    def granted(self, policy: policy_pb2.Policy, permission: str) -> bool:
        """Whether the emulator's caller holds ``permission`` on a resource with ``policy``."""
        return bool(self.permission_prefix) and permission.startswith(self.permission_prefix)

    def current(self, resource: str) -> policy_pb2.Policy:
        """The stored policy (not a copy; lock held)."""
        return self.by_resource.get(resource) or empty_policy()

    def save(self, resource: str, policy: policy_pb2.Policy) -> None:
        """Store a new policy with a new etag (lock held)."""
        policy.etag = os.urandom(8)
        self.by_resource[resource] = policy

    def forget(self, resource: str) -> None:
        """The resource is deleted: so is its policy (lock held)."""
        self.by_resource.pop(resource, None)

    # the policy as other services read it ------------------------------------------------------
    def policy(self, resource: str) -> policy_pb2.Policy:
        """A copy of the resource's policy (NOT_FOUND without the resource)."""
        with self.service.lock:
            self.check_exists(resource)
            return copy(self.current(resource))

    # google.iam.v1.IAMPolicy ------------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        """The three methods, to merge into the table of the API that serves them."""
        return {
            "GetIamPolicy": self.get_iam_policy,
            "SetIamPolicy": self.set_iam_policy,
            "TestIamPermissions": self.test_iam_permissions,
        }

    def get_iam_policy(
        self, request: iam_policy_pb2.GetIamPolicyRequest, context: Any
    ) -> policy_pb2.Policy:
        self.check_name(request.resource)
        requested = request.options.requested_policy_version
        if self.applies_requested_version and requested not in VERSIONS:
            raise invalid_argument(
                f"Invalid requested_policy_version {requested}: must be 0, 1 or 3"
            )
        with self.service.lock:
            self.check_exists(request.resource)
            policy = self.current(request.resource)
            if self.applies_requested_version and requested < 3 and is_conditional(policy.bindings):
                raise invalid_argument(
                    "The policy has conditional bindings; request policy version 3 to read it"
                )
            return copy(policy)

    def set_iam_policy(
        self, request: iam_policy_pb2.SetIamPolicyRequest, context: Any
    ) -> policy_pb2.Policy:
        self.check_name(request.resource)
        new = request.policy
        paths = self._paths(request)
        bindings = self.bindings(new.bindings)
        self._check_added_accounts(request.resource, bindings)
        if new.version not in VERSIONS:
            raise invalid_argument(f"Invalid policy version {new.version}: must be 1 or 3")
        if is_conditional(bindings) and new.version != 3:
            raise invalid_argument(
                "Policies with conditional role bindings must use version 3, "
                f"got version {new.version}"
            )
        with self.service.lock:
            self.check_exists(request.resource)
            current = self.current(request.resource)
            check_etag(new.etag, current.etag, STALE_ETAG, aborted)
            updated = copy(current)
            del updated.bindings[:]
            updated.bindings.extend(bindings)
            if paths & {"audit_configs", "auditConfigs"}:
                del updated.audit_configs[:]
                updated.audit_configs.extend(new.audit_configs)
            updated.version = stored_version(bindings)
            self.save(request.resource, updated)
            self.service.changed()
            return copy(updated)

    def _check_added_accounts(self, resource: str, bindings: Sequence[policy_pb2.Binding]) -> None:
        # Outside this service's lock: IAM's is taken to look the accounts up.
        added = members(bindings) - members(self.policy(resource).bindings)
        iam = self.service.cloud.service("iam")
        for member in sorted(added):
            kind, _, email = member.partition(":")
            found = _PROJECT_ACCOUNT.fullmatch(f"{kind}:{email.lower()}")
            if found and iam.service_account(found.group(1)) is None:
                raise invalid_argument(f"Service account {found.group(1)} does not exist.")

    def _paths(self, request: iam_policy_pb2.SetIamPolicyRequest) -> set[str]:
        if not self.honours_update_mask:
            return {"bindings", "etag", "audit_configs"}
        paths = set(request.update_mask.paths) if request.HasField("update_mask") else set()
        paths = paths or {"bindings", "etag"}
        unknown = paths - _MASKABLE
        if unknown:
            raise invalid_argument(f"invalid update_mask paths: {sorted(unknown)}")
        return paths

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, context: Any
    ) -> iam_policy_pb2.TestIamPermissionsResponse:
        self.check_name(request.resource)
        self.check_permissions(request.permissions)
        with self.service.lock:
            self.check_exists(request.resource)
            policy = self.current(request.resource)
            held = [p for p in request.permissions if self.granted(policy, p)]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=held)

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {name: to_jsonable(p) for name, p in self.by_resource.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.by_resource = {
            name: from_jsonable(policy_pb2.Policy, rec) for name, rec in (data or {}).items()
        }
