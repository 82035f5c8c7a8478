"""Secret Manager v1 secrets (create, read, list, delete) and the IAM policy of each secret.

See docs/emulator/secretmanager.md for the fidelity of every RPC.
"""

from __future__ import annotations

import os
import re
from typing import Any

from google.cloud import secretmanager_v1 as sm
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from govctl.emulator import rpc
from govctl.emulator.iam import policy as iam_policy
from govctl.emulator.iam import roles
from govctl.emulator.rpc import Method, failed_precondition, invalid_argument
from govctl.emulator.secretmanager.resources import PROJECT, SecretResources, copy, new_etag

SecretPb: Any = sm.Secret.pb()

# cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create: secret_id
# is letters, digits, underscores and hyphens, at most 255 characters.
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
EMPTY_ETAG = b"\x00\x20\x01"


class SecretsRpcs(SecretResources):
    def secrets_methods(self) -> dict[str, Method]:
        return {
            "CreateSecret": Method(self.create_secret, sm.CreateSecretRequest, sm.Secret),
            "GetSecret": Method(self.get_secret, sm.GetSecretRequest, sm.Secret),
            "ListSecrets": Method(self.list_secrets, sm.ListSecretsRequest, sm.ListSecretsResponse),
            "DeleteSecret": Method(self.delete_secret, sm.DeleteSecretRequest, empty_pb2.Empty),
            **iam_policy.methods(
                self.get_iam_policy, self.set_iam_policy, self.test_iam_permissions
            ),
        }

    # secrets -----------------------------------------------------------------------------
    def create_secret(self, request: sm.CreateSecretRequest, context: Any) -> Any:
        if not PROJECT.fullmatch(request.parent):
            raise invalid_argument(f"Invalid parent {request.parent!r}: expected projects/*.")
        if not _SECRET_ID.fullmatch(request.secret_id):
            raise invalid_argument(
                f"Invalid secret_id {request.secret_id!r}: use letters, digits, underscores and "
                "hyphens, at most 255 characters."
            )
        pb = SecretPb()
        pb.CopyFrom(sm.Secret.pb(request.secret))
        if pb.replication.WhichOneof("replication") is None:
            raise invalid_argument("Secret.replication is required.")
        pb.name = f"{request.parent}/secrets/{request.secret_id}"
        pb.create_time.FromDatetime(self.cloud.clock.now())
        pb.etag = new_etag()
        with self.lock:
            if pb.name in self.secrets:
                raise rpc.already_exists(f"Secret [{pb.name}] already exists.")
            self.secrets[pb.name] = pb
            self.versions[pb.name] = []
            self.changed()
            return copy(pb, sm.Secret)

    def get_secret(self, request: sm.GetSecretRequest, context: Any) -> Any:
        with self.lock:
            return copy(self.require_secret(request.name), sm.Secret)

    def list_secrets(self, request: sm.ListSecretsRequest, context: Any) -> Any:
        if not PROJECT.fullmatch(request.parent):
            raise invalid_argument(f"Invalid parent {request.parent!r}: expected projects/*.")
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListSecrets.")
        prefix = request.parent + "/secrets/"
        with self.lock:
            found = [
                copy(pb, sm.Secret)
                for name, pb in sorted(self.secrets.items())
                if name.startswith(prefix)
            ]
        items, token = rpc.page(
            found, request.page_size, request.page_token, default_size=25000, max_size=25000
        )
        return sm.ListSecretsResponse(secrets=items, next_page_token=token, total_size=len(found))

    def delete_secret(self, request: sm.DeleteSecretRequest, context: Any) -> Any:
        with self.lock:
            pb = self.require_secret(request.name)
            if request.etag and request.etag != pb.etag:
                raise failed_precondition(
                    f"The etag {request.etag} does not match the secret's etag {pb.etag}."
                )
            del self.secrets[request.name]
            for version in self.versions.pop(request.name, []):
                self.payloads.pop(version.name, None)
            self.policies.pop(request.name, None)
            self.changed()
        return empty_pb2.Empty()

    # IAM on secrets ----------------------------------------------------------------------
    def get_iam_policy(self, request: iam_policy_pb2.GetIamPolicyRequest, context: Any) -> Any:
        requested = request.options.requested_policy_version
        if requested not in (0, 1, 3):
            raise invalid_argument(f"Invalid requested_policy_version {requested}: 0, 1 or 3.")
        with self.lock:
            self.require_secret(request.resource)
            policy = self.policies.get(request.resource)
            if policy is None:
                return policy_pb2.Policy(version=1, etag=EMPTY_ETAG)
            if requested < 3 and iam_policy.is_conditional(policy.bindings):
                raise invalid_argument(
                    "The policy has conditional bindings; request policy version 3 to read it."
                )
            return iam_policy.copy(policy)

    def set_iam_policy(self, request: iam_policy_pb2.SetIamPolicyRequest, context: Any) -> Any:
        new = request.policy
        for i, binding in enumerate(new.bindings):
            if not roles.is_known_role(binding.role):
                raise invalid_argument(f"bindings[{i}].role: Role {binding.role} is not supported.")
            if not binding.members:
                raise invalid_argument(f"bindings[{i}]: a binding needs at least one member.")
            for member in binding.members:
                email = member.removeprefix("serviceAccount:")
                # IAM refuses a grant to a service account that does not exist (Google's own
                # accounts, such as service agents, are not modelled: they are let through).
                if (
                    member.startswith("serviceAccount:")
                    and email.endswith(".iam.gserviceaccount.com")
                    and self.cloud.service("iam").service_account(email) is None
                ):
                    raise invalid_argument(f"Service account {email} does not exist.")
        version = iam_policy.stored_version(new.bindings)
        if version == 3 and new.version != 3:
            raise invalid_argument("A policy with conditions must use version 3.")
        with self.lock:
            self.require_secret(request.resource)
            current = self.policies.get(request.resource) or policy_pb2.Policy(etag=EMPTY_ETAG)
            iam_policy.check_etag(new, current)
            stored = iam_policy.copy(new)
            stored.version = version
            stored.etag = os.urandom(8)
            self.policies[request.resource] = stored
            self.changed()
            return iam_policy.copy(stored)

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, context: Any
    ) -> Any:
        with self.lock:
            self.require_secret(request.resource)
        # The emulator's caller owns every project: it holds each Secret Manager permission.
        granted = [p for p in request.permissions if p.startswith("secretmanager.")]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=granted)
