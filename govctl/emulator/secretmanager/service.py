"""Secret Manager v1 (``google.cloud.secretmanager.v1.SecretManagerService``).

Secrets live in memory as ``Secret`` messages, their versions as ``SecretVersion`` messages
and the versions' payloads as bytes (:mod:`.resources`); all three are saved in ``state.json``
(a local emulator: the values are on this machine's disk, in a file only its owner can read).
The RPCs live in :mod:`.secret_rpcs` (secrets; their IAM policies in :mod:`.policies`) and
:mod:`.versions` (versions and their payloads). Cloud Run reads a secret through the public
contract :meth:`~.resolve.Resolution.resolve`, which applies the checks Cloud Run's service
agent meets. This module wires them into one :class:`~govctl.emulator.cloud.Service`.
See docs/emulator/secretmanager.md for the fidelity of every RPC.
"""

from __future__ import annotations

import base64
from typing import Any

from google.cloud import secretmanager_v1 as sm

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.secretmanager.resolve import Resolution
from govctl.emulator.secretmanager.secret_rpcs import SecretsRpcs
from govctl.emulator.secretmanager.versions import VersionsRpcs
from govctl.emulator.state import from_jsonable, to_jsonable


class SecretManagerService(SecretsRpcs, VersionsRpcs, Resolution):
    key = "secretmanager"

    # gRPC, persistence -------------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        api = gapic_api("google.cloud.secretmanager_v1.services.secret_manager_service")
        return [api.bind({**self.secrets_methods(), **self.versions_methods()})]

    def dump(self) -> Any:
        return {
            "secrets": self.secrets.dump(),
            "versions": [to_jsonable(pb) for vs in self.versions.values() for pb in vs],
            "payloads": {
                name: base64.b64encode(data).decode() for name, data in self.payloads.items()
            },
            "policies": self.policies.dump(),
        }

    def load(self, data: Any) -> None:
        data = data or {}
        self.secrets.load(data.get("secrets", []))
        for pb in self.secrets:
            self.versions.setdefault(pb.name, [])
        for rec in data.get("versions", []):
            pb = sm.SecretVersion.pb(from_jsonable(sm.SecretVersion, rec))
            self.versions.setdefault(pb.name.rsplit("/versions/", 1)[0], []).append(pb)
        for versions in self.versions.values():
            versions.sort(key=lambda pb: int(pb.name.rsplit("/", 1)[1]))
        for name, encoded in data.get("payloads", {}).items():
            self.payloads[name] = base64.b64decode(encoded)
        self.policies.load(data.get("policies", {}))
