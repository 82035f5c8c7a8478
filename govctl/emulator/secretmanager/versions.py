"""Secret Manager v1 secret versions: add, read, list, access, enable, disable, destroy.

See docs/emulator/secretmanager.md for the fidelity of every RPC.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import secretmanager_v1 as sm

from govctl.emulator import rpc
from govctl.emulator.rpc import Method, failed_precondition, invalid_argument
from govctl.emulator.secretmanager.resources import (
    SecretResources,
    State,
    copy,
    crc32c,
    new_etag,
)

VersionPb: Any = sm.SecretVersion.pb()

MAX_PAYLOAD = 64 * 1024  # Secret Manager's payload limit (64 KiB)


class VersionsRpcs(SecretResources):
    def versions_methods(self) -> dict[str, Method]:
        v = sm.SecretVersion
        return {
            "AddSecretVersion": Method(self.add_secret_version, sm.AddSecretVersionRequest, v),
            "GetSecretVersion": Method(self.get_secret_version, sm.GetSecretVersionRequest, v),
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
        }

    def add_secret_version(self, request: sm.AddSecretVersionRequest, context: Any) -> Any:
        data = request.payload.data
        if len(data) > MAX_PAYLOAD:
            raise invalid_argument(
                f"Secret payload is {len(data)} bytes; the limit is {MAX_PAYLOAD} bytes."
            )
        checksum = None
        if "data_crc32c" in request.payload:
            checksum = request.payload.data_crc32c
            if checksum != crc32c(data):
                raise invalid_argument("Checksum mismatch: data_crc32c does not match the data.")
        with self.lock:
            secret = self.require_secret(request.parent)
            versions = self.versions.setdefault(secret.name, [])
            pb = VersionPb(name=f"{secret.name}/versions/{len(versions) + 1}", state=State.ENABLED)
            pb.create_time.FromDatetime(self.cloud.clock.now())
            pb.etag = new_etag()
            pb.client_specified_payload_checksum = checksum is not None
            versions.append(pb)
            self.payloads[pb.name] = bytes(data)
            self.changed()
            return copy(pb, sm.SecretVersion)

    def get_secret_version(self, request: sm.GetSecretVersionRequest, context: Any) -> Any:
        with self.lock:
            return copy(self.require_version(request.name), sm.SecretVersion)

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
            secret = self.require_secret(request.parent)
            # Newest first, as the service lists them.
            found = [
                copy(pb, sm.SecretVersion)
                for pb in reversed(self.versions.get(secret.name, []))
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
            pb = self.require_version(request.name)
            if pb.state != State.ENABLED:
                raise failed_precondition(
                    f"Secret Version [{pb.name}] is in {State(pb.state).name} state."
                )
            data = self.payloads[pb.name]
        return sm.AccessSecretVersionResponse(
            name=pb.name, payload=sm.SecretPayload(data=data, data_crc32c=crc32c(data))
        )

    def _set_state(self, name: str, etag: str, state: Any) -> Any:
        with self.lock:
            pb = self.require_version(name)
            if etag and etag != pb.etag:
                raise failed_precondition(
                    f"The etag {etag} does not match the secret version's etag {pb.etag}."
                )
            if pb.state == State.DESTROYED:
                raise failed_precondition(f"Secret Version [{pb.name}] is in DESTROYED state.")
            pb.state = state
            pb.etag = new_etag()
            if state == State.DESTROYED:
                pb.destroy_time.FromDatetime(self.cloud.clock.now())
                self.payloads.pop(pb.name, None)
            self.changed()
            return copy(pb, sm.SecretVersion)

    def enable_secret_version(self, request: sm.EnableSecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.ENABLED)

    def disable_secret_version(self, request: sm.DisableSecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.DISABLED)

    def destroy_secret_version(self, request: sm.DestroySecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.DESTROYED)
