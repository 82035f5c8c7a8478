"""Secret Manager v1 (``google.cloud.secretmanager.v1.SecretManagerService``).

Secrets live in memory as ``Secret`` messages, their versions as ``SecretVersion`` messages
and the versions' payloads as bytes; all three are saved in ``state.json`` (a local emulator:
the values are on this machine's disk, in a file only its owner can read). Cloud Run reads a
secret through the public contract :meth:`SecretManagerService.resolve`, which applies the
checks Cloud Run's service agent meets: the version exists, is enabled, and the job's service
account holds ``secretmanager.versions.access`` on the secret or its project.
See docs/emulator/secretmanager.md for the fidelity of every RPC.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import secretmanager_v1 as sm
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.iam import policy as iam_policy
from govctl.emulator.iam import roles
from govctl.emulator.rpc import Method, failed_precondition, invalid_argument, not_found
from govctl.emulator.state import from_jsonable, to_jsonable

SecretPb: Any = sm.Secret.pb()
VersionPb: Any = sm.SecretVersion.pb()
State = sm.SecretVersion.State

ACCESS = "secretmanager.versions.access"
# cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create: secret_id
# is letters, digits, underscores and hyphens, at most 255 characters.
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PROJECT = re.compile(r"projects/([^/]+)")
_SECRET = re.compile(r"projects/([^/]+)/secrets/([^/]+)")
_VERSION = re.compile(r"projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)")
MAX_PAYLOAD = 64 * 1024  # Secret Manager's payload limit (64 KiB)
EMPTY_ETAG = b"\x00\x20\x01"


class SecretUnavailable(LookupError):
    """Why a secret reference cannot be resolved, in Cloud Run's words."""


@dataclass(frozen=True)
class _Ref:
    secret: str  # projects/P/secrets/S
    version: str  # a number or "latest"


def _copy(pb: Any, cls: Any) -> Any:
    out = type(pb)()
    out.CopyFrom(pb)
    return cls.wrap(out)


def _crc32c(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def _secret_name(name: str, field: str = "name") -> str:
    m = _SECRET.fullmatch(name)
    if not m:
        raise invalid_argument(f"Invalid {field} {name!r}: expected projects/*/secrets/*.")
    return name


def _version_name(name: str) -> tuple[str, str]:
    m = _VERSION.fullmatch(name)
    if not m:
        raise invalid_argument(f"Invalid name {name!r}: expected projects/*/secrets/*/versions/*.")
    version = m.group(3)
    if version != "latest" and not version.isdigit():
        raise invalid_argument(f"Invalid version {version!r}: a version number or 'latest'.")
    return f"projects/{m.group(1)}/secrets/{m.group(2)}", version


class SecretManagerService(Service):
    key = "secretmanager"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._secrets: dict[str, Any] = {}  # name -> raw Secret pb
        self._versions: dict[str, list[Any]] = {}  # secret name -> versions, oldest first
        self._payloads: dict[str, bytes] = {}  # version name -> data (gone once destroyed)
        self._policies: dict[str, policy_pb2.Policy] = {}

    # public contract (see govctl/emulator/cloud.py) ----------------------------------------
    def resolve(self, project: str, secret: str, version: str, member: str) -> str:
        """The value Cloud Run puts in a task's environment for a ``secret_key_ref``.

        ``secret`` is a secret id of ``project`` or ``projects/P/secrets/S``; ``version`` a
        number or ``latest`` (empty means latest). Raises :class:`SecretUnavailable` with the
        message Cloud Run shows when the secret, the version or the access is missing.
        """
        name = secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
        version = version or "latest"
        shown = f"{name}/versions/{version}"
        if not _SECRET.fullmatch(name):
            raise SecretUnavailable(f"Secret {shown} is not a valid secret reference.")
        with self.lock:
            stored = self._secrets.get(name)
            if stored is None:
                raise SecretUnavailable(f"Secret {shown} was not found")
            if not self._can_access(name, member):
                account = member.removeprefix("serviceAccount:")
                raise SecretUnavailable(
                    f"Permission denied on secret: {shown} for Revision service account "
                    f"{account}. The service account used must be granted the 'Secret Manager "
                    "Secret Accessor' role (roles/secretmanager.secretAccessor) at the secret, "
                    "project or higher level."
                )
            pb = self._find_version(name, version)
            if pb is None:
                raise SecretUnavailable(f"Secret {shown} was not found")
            if pb.state != State.ENABLED:
                raise SecretUnavailable(
                    f"Secret {shown} is in {State(pb.state).name} state and cannot be accessed."
                )
            return self._payloads[pb.name].decode("utf-8", errors="replace")

    def _can_access(self, secret: str, member: str) -> bool:
        if roles.allows(self._policies.get(secret, policy_pb2.Policy()), member, ACCESS):
            return True
        project = secret.split("/")[1]
        iam = self.cloud.service("iam")
        return bool(iam.allows(iam.project_iam_policy(project), member, ACCESS))

    # helpers -----------------------------------------------------------------------------
    def _secret(self, name: str) -> Any:
        pb = self._secrets.get(_secret_name(name))
        if pb is None:
            raise not_found(f"Secret [{name}] not found or has no versions.")
        return pb

    def _find_version(self, secret: str, version: str) -> Any | None:
        versions = self._versions.get(secret, [])
        if version == "latest":
            # "latest" is the most recently created version, whatever its state (Google's
            # reference for GetSecretVersion / AccessSecretVersion).
            return versions[-1] if versions else None
        index = int(version) - 1
        return versions[index] if 0 <= index < len(versions) else None

    def _version(self, name: str) -> Any:
        secret, version = _version_name(name)
        self._secret(secret)
        pb = self._find_version(secret, version)
        if pb is None:
            raise not_found(f"Secret Version [{name}] not found.")
        return pb

    def _etag(self) -> str:
        return f'"{os.urandom(6).hex()}"'

    # secrets -----------------------------------------------------------------------------
    def create_secret(self, request: sm.CreateSecretRequest, context: Any) -> Any:
        if not _PROJECT.fullmatch(request.parent):
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
        pb.etag = self._etag()
        with self.lock:
            if pb.name in self._secrets:
                raise rpc.already_exists(f"Secret [{pb.name}] already exists.")
            self._secrets[pb.name] = pb
            self._versions[pb.name] = []
            self.changed()
            return _copy(pb, sm.Secret)

    def get_secret(self, request: sm.GetSecretRequest, context: Any) -> Any:
        with self.lock:
            return _copy(self._secret(request.name), sm.Secret)

    def list_secrets(self, request: sm.ListSecretsRequest, context: Any) -> Any:
        if not _PROJECT.fullmatch(request.parent):
            raise invalid_argument(f"Invalid parent {request.parent!r}: expected projects/*.")
        if request.filter:
            raise invalid_argument("The emulator does not support a filter on ListSecrets.")
        prefix = request.parent + "/secrets/"
        with self.lock:
            found = [
                _copy(pb, sm.Secret)
                for name, pb in sorted(self._secrets.items())
                if name.startswith(prefix)
            ]
        items, token = rpc.page(
            found, request.page_size, request.page_token, default_size=25000, max_size=25000
        )
        return sm.ListSecretsResponse(secrets=items, next_page_token=token, total_size=len(found))

    def delete_secret(self, request: sm.DeleteSecretRequest, context: Any) -> Any:
        with self.lock:
            pb = self._secret(request.name)
            if request.etag and request.etag != pb.etag:
                raise failed_precondition(
                    f"The etag {request.etag} does not match the secret's etag {pb.etag}."
                )
            del self._secrets[request.name]
            for version in self._versions.pop(request.name, []):
                self._payloads.pop(version.name, None)
            self._policies.pop(request.name, None)
            self.changed()
        return empty_pb2.Empty()

    # versions ----------------------------------------------------------------------------
    def add_secret_version(self, request: sm.AddSecretVersionRequest, context: Any) -> Any:
        data = request.payload.data
        if len(data) > MAX_PAYLOAD:
            raise invalid_argument(
                f"Secret payload is {len(data)} bytes; the limit is {MAX_PAYLOAD} bytes."
            )
        checksum = None
        if "data_crc32c" in request.payload:
            checksum = request.payload.data_crc32c
            if checksum != _crc32c(data):
                raise invalid_argument("Checksum mismatch: data_crc32c does not match the data.")
        with self.lock:
            secret = self._secret(request.parent)
            versions = self._versions.setdefault(secret.name, [])
            pb = VersionPb(name=f"{secret.name}/versions/{len(versions) + 1}", state=State.ENABLED)
            pb.create_time.FromDatetime(self.cloud.clock.now())
            pb.etag = self._etag()
            pb.client_specified_payload_checksum = checksum is not None
            versions.append(pb)
            self._payloads[pb.name] = bytes(data)
            self.changed()
            return _copy(pb, sm.SecretVersion)

    def get_secret_version(self, request: sm.GetSecretVersionRequest, context: Any) -> Any:
        with self.lock:
            return _copy(self._version(request.name), sm.SecretVersion)

    def list_secret_versions(self, request: sm.ListSecretVersionsRequest, context: Any) -> Any:
        wanted = None
        if request.filter:
            m = re.fullmatch(r"state\s*[:=]\s*(ENABLED|DISABLED|DESTROYED)", request.filter.strip())
            if not m:
                raise invalid_argument(
                    f"The emulator supports only the filter state:ENABLED|DISABLED|DESTROYED, "
                    f"got {request.filter!r}."
                )
            wanted = State.__members__[m.group(1)]
        with self.lock:
            secret = self._secret(request.parent)
            # Newest first, as the service lists them.
            found = [
                _copy(pb, sm.SecretVersion)
                for pb in reversed(self._versions.get(secret.name, []))
                if wanted is None or pb.state == wanted
            ]
        items, token = rpc.page(
            found, request.page_size, request.page_token, default_size=25000, max_size=25000
        )
        return sm.ListSecretVersionsResponse(
            versions=items, next_page_token=token, total_size=len(found)
        )

    def access_secret_version(self, request: sm.AccessSecretVersionRequest, context: Any) -> Any:
        with self.lock:
            pb = self._version(request.name)
            if pb.state != State.ENABLED:
                raise failed_precondition(
                    f"Secret Version [{pb.name}] is in {State(pb.state).name} state."
                )
            data = self._payloads[pb.name]
        return sm.AccessSecretVersionResponse(
            name=pb.name, payload=sm.SecretPayload(data=data, data_crc32c=_crc32c(data))
        )

    def _set_state(self, name: str, etag: str, state: Any) -> Any:
        with self.lock:
            pb = self._version(name)
            if etag and etag != pb.etag:
                raise failed_precondition(
                    f"The etag {etag} does not match the secret version's etag {pb.etag}."
                )
            if pb.state == State.DESTROYED:
                raise failed_precondition(f"Secret Version [{pb.name}] is in DESTROYED state.")
            pb.state = state
            pb.etag = self._etag()
            if state == State.DESTROYED:
                pb.destroy_time.FromDatetime(self.cloud.clock.now())
                self._payloads.pop(pb.name, None)
            self.changed()
            return _copy(pb, sm.SecretVersion)

    def enable_secret_version(self, request: sm.EnableSecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.ENABLED)

    def disable_secret_version(self, request: sm.DisableSecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.DISABLED)

    def destroy_secret_version(self, request: sm.DestroySecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.DESTROYED)

    # IAM on secrets ----------------------------------------------------------------------
    def get_iam_policy(self, request: iam_policy_pb2.GetIamPolicyRequest, context: Any) -> Any:
        requested = request.options.requested_policy_version
        if requested not in (0, 1, 3):
            raise invalid_argument(f"Invalid requested_policy_version {requested}: 0, 1 or 3.")
        with self.lock:
            self._secret(request.resource)
            policy = self._policies.get(request.resource)
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
            self._secret(request.resource)
            current = self._policies.get(request.resource) or policy_pb2.Policy(etag=EMPTY_ETAG)
            iam_policy.check_etag(new, current)
            stored = iam_policy.copy(new)
            stored.version = version
            stored.etag = os.urandom(8)
            self._policies[request.resource] = stored
            self.changed()
            return iam_policy.copy(stored)

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, context: Any
    ) -> Any:
        with self.lock:
            self._secret(request.resource)
        # The emulator's caller owns every project: it holds each Secret Manager permission.
        granted = [p for p in request.permissions if p.startswith("secretmanager.")]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=granted)

    # gRPC, persistence -------------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        v = sm.SecretVersion
        return [
            rpc.service(
                "google.cloud.secretmanager.v1.SecretManagerService",
                {
                    "CreateSecret": Method(self.create_secret, sm.CreateSecretRequest, sm.Secret),
                    "GetSecret": Method(self.get_secret, sm.GetSecretRequest, sm.Secret),
                    "ListSecrets": Method(
                        self.list_secrets, sm.ListSecretsRequest, sm.ListSecretsResponse
                    ),
                    "DeleteSecret": Method(
                        self.delete_secret, sm.DeleteSecretRequest, empty_pb2.Empty
                    ),
                    "AddSecretVersion": Method(
                        self.add_secret_version, sm.AddSecretVersionRequest, v
                    ),
                    "GetSecretVersion": Method(
                        self.get_secret_version, sm.GetSecretVersionRequest, v
                    ),
                    "ListSecretVersions": Method(
                        self.list_secret_versions,
                        sm.ListSecretVersionsRequest,
                        sm.ListSecretVersionsResponse,
                    ),
                    "AccessSecretVersion": Method(
                        self.access_secret_version,
                        sm.AccessSecretVersionRequest,
                        sm.AccessSecretVersionResponse,
                    ),
                    "EnableSecretVersion": Method(
                        self.enable_secret_version, sm.EnableSecretVersionRequest, v
                    ),
                    "DisableSecretVersion": Method(
                        self.disable_secret_version, sm.DisableSecretVersionRequest, v
                    ),
                    "DestroySecretVersion": Method(
                        self.destroy_secret_version, sm.DestroySecretVersionRequest, v
                    ),
                    **iam_policy.methods(
                        self.get_iam_policy, self.set_iam_policy, self.test_iam_permissions
                    ),
                },
            )
        ]

    def dump(self) -> Any:
        return {
            "secrets": [to_jsonable(pb) for pb in self._secrets.values()],
            "versions": [to_jsonable(pb) for vs in self._versions.values() for pb in vs],
            "payloads": {
                name: base64.b64encode(data).decode() for name, data in self._payloads.items()
            },
            "policies": {name: to_jsonable(p) for name, p in self._policies.items()},
        }

    def load(self, data: Any) -> None:
        data = data or {}
        for rec in data.get("secrets", []):
            pb = sm.Secret.pb(from_jsonable(sm.Secret, rec))
            self._secrets[pb.name] = pb
            self._versions.setdefault(pb.name, [])
        for rec in data.get("versions", []):
            pb = sm.SecretVersion.pb(from_jsonable(sm.SecretVersion, rec))
            self._versions.setdefault(pb.name.rsplit("/versions/", 1)[0], []).append(pb)
        for versions in self._versions.values():
            versions.sort(key=lambda pb: int(pb.name.rsplit("/", 1)[1]))
        for name, encoded in data.get("payloads", {}).items():
            self._payloads[name] = base64.b64decode(encoded)
        for name, rec in data.get("policies", {}).items():
            self._policies[name] = from_jsonable(policy_pb2.Policy, rec)
