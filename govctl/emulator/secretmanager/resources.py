"""The resources of the emulated Secret Manager and the lookups its modules share.

:class:`SecretResources` holds secrets (a :class:`~govctl.emulator.store.Store` of
``Secret`` messages), their versions (``SecretVersion`` messages), the versions' payloads
(bytes) and the secrets' IAM policies (:mod:`.policies`) in memory under the service lock. The
RPCs build on it: :mod:`.secret_rpcs` (secrets and their IAM policies), :mod:`.versions`
(versions and their payloads) and :mod:`.resolve` (what Cloud Run reads); :mod:`.service` wires
them into one :class:`~govctl.emulator.cloud.Service`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from google.cloud import secretmanager_v1 as sm

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.rpc import Paging, invalid_argument, not_found
from govctl.emulator.secretmanager.policies import SecretPolicies
from govctl.emulator.store import Store

State = sm.SecretVersion.State
# ListSecretsRequest / ListSecretVersionsRequest.page_size: capped at 25000; 0 lets the server
# decide (here: 25000). Their responses carry total_size.
PAGING = Paging(default=25000, maximum=25000, total_size=True)

PROJECT = re.compile(r"projects/([^/]+)")
SECRET = re.compile(r"projects/([^/]+)/secrets/([^/]+)")
_VERSION = re.compile(r"projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)")


def crc32c(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def new_etag() -> str:
    return f'"{os.urandom(6).hex()}"'


def _secret_name(name: str, field: str = "name") -> str:
    m = SECRET.fullmatch(name)
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


class SecretResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.secrets: Store[Any, sm.Secret] = Store(
            sm.Secret,
            missing="Secret [{name}] not found or has no versions.",
            exists="Secret [{name}] already exists.",
        )
        self.versions: dict[str, list[Any]] = {}  # secret name -> versions, oldest first
        self.payloads: dict[str, bytes] = {}  # version name -> data (gone once destroyed)
        self.policies = SecretPolicies(self, self.require_secret)

    def require_secret(self, name: str) -> Any:
        return self.secrets.require(_secret_name(name))

    def find_version(self, secret: str, version: str) -> Any | None:
        versions = self.versions.get(secret, [])
        if version == "latest":
            # "latest" is the most recently created version, whatever its state (Google's
            # reference for GetSecretVersion / AccessSecretVersion).
            return versions[-1] if versions else None
        index = int(version) - 1
        return versions[index] if 0 <= index < len(versions) else None

    def require_version(self, name: str) -> Any:
        secret, version = _version_name(name)
        self.require_secret(secret)
        pb = self.find_version(secret, version)
        if pb is None:
            raise not_found(f"Secret Version [{name}] not found.")
        return pb
