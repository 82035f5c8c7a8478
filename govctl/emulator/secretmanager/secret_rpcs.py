"""Secret Manager v1 secrets (create, read, list, delete) and the IAM policy of each secret.

See docs/emulator/secretmanager.md for the fidelity of every RPC.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import secretmanager_v1 as sm
from google.protobuf import empty_pb2

from govctl.emulator.apis import Handler
from govctl.emulator.rpc import failed_precondition, invalid_argument, refuse_filter
from govctl.emulator.secretmanager.resources import PAGING, PROJECT, SecretResources, new_etag
from govctl.emulator.store import check_etag

# cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create: secret_id
# is letters, digits, underscores and hyphens, at most 255 characters.
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


class SecretsRpcs(SecretResources):
    def secrets_methods(self) -> dict[str, Handler]:
        return {
            "CreateSecret": self.create_secret,
            "GetSecret": self.get_secret,
            "ListSecrets": self.list_secrets,
            "DeleteSecret": self.delete_secret,
            **self.policies.handlers(),
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
        pb = self.secrets.stored(request.secret)
        if pb.replication.WhichOneof("replication") is None:
            raise invalid_argument("Secret.replication is required.")
        pb.name = f"{request.parent}/secrets/{request.secret_id}"
        pb.create_time.FromDatetime(self.cloud.clock.now())
        pb.etag = new_etag()
        with self.lock:
            self.secrets.add(pb)
            self.versions[pb.name] = []
            self.changed()
            return self.secrets.out(pb)

    def get_secret(self, request: sm.GetSecretRequest, context: Any) -> Any:
        with self.lock:
            return self.secrets.out(self.require_secret(request.name))

    def list_secrets(self, request: sm.ListSecretsRequest, context: Any) -> Any:
        if not PROJECT.fullmatch(request.parent):
            raise invalid_argument(f"Invalid parent {request.parent!r}: expected projects/*.")
        refuse_filter(request.filter, "ListSecrets")
        with self.lock:
            found = self.secrets.copies(request.parent + "/secrets/")
        return PAGING.respond(sm.ListSecretsResponse, "secrets", found, request)

    def delete_secret(self, request: sm.DeleteSecretRequest, context: Any) -> Any:
        with self.lock:
            pb = self.require_secret(request.name)
            message = f"The etag {request.etag} does not match the secret's etag {pb.etag}."
            check_etag(request.etag, pb.etag, message, failed_precondition)
            self.secrets.remove(request.name)
            for version in self.versions.pop(request.name, []):
                self.payloads.pop(version.name, None)
            self.policies.forget(request.name)
            self.changed()
        return empty_pb2.Empty()
