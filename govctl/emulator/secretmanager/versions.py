"""Secret Manager v1 secret versions: add, read, list, access, enable, disable, destroy.

See docs/emulator/secretmanager.md for the fidelity of every RPC.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import secretmanager_v1 as sm

from govctl.emulator.apis import Handler
from govctl.emulator.rpc import failed_precondition, invalid_argument
from govctl.emulator.secretmanager.resources import (
    PAGING,
    SecretResources,
    State,
    crc32c,
    new_etag,
)
from govctl.emulator.store import check_etag, copy, wrap

VersionPb: Any = sm.SecretVersion.pb()


def _out(pb: Any) -> sm.SecretVersion:
    return wrap(sm.SecretVersion, copy(pb))


MAX_PAYLOAD = 64 * 1024  # Secret Manager's payload limit (64 KiB)


class VersionsRpcs(SecretResources):
    def versions_methods(self) -> dict[str, Handler]:
        return {
            "AddSecretVersion": self.add_secret_version,
            "GetSecretVersion": self.get_secret_version,
            "ListSecretVersions": self.list_secret_versions,
            "AccessSecretVersion": self.access_secret_version,
            "EnableSecretVersion": self.enable_secret_version,
            "DisableSecretVersion": self.disable_secret_version,
            "DestroySecretVersion": self.destroy_secret_version,
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
            return _out(pb)

    def get_secret_version(self, request: sm.GetSecretVersionRequest, context: Any) -> Any:
        with self.lock:
            return _out(self.require_version(request.name))

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
                _out(pb)
                for pb in reversed(self.versions.get(secret.name, []))
                if wanted is None or pb.state == wanted
            ]
        return PAGING.respond(sm.ListSecretVersionsResponse, "versions", found, request)

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
            message = f"The etag {etag} does not match the secret version's etag {pb.etag}."
            check_etag(etag, pb.etag, message, failed_precondition)
            if pb.state == State.DESTROYED:
                raise failed_precondition(f"Secret Version [{pb.name}] is in DESTROYED state.")
            pb.state = state
            pb.etag = new_etag()
            if state == State.DESTROYED:
                pb.destroy_time.FromDatetime(self.cloud.clock.now())
                self.payloads.pop(pb.name, None)
            self.changed()
            return _out(pb)

    def enable_secret_version(self, request: sm.EnableSecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.ENABLED)

    def disable_secret_version(self, request: sm.DisableSecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.DISABLED)

    def destroy_secret_version(self, request: sm.DestroySecretVersionRequest, context: Any) -> Any:
        return self._set_state(request.name, request.etag, State.DESTROYED)
