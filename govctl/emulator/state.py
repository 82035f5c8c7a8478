"""State of the loopback cloud, persisted as one JSON document per state directory.

Services keep their resources in memory as protobuf messages and hand back a JSON-able
snapshot through ``dump()``; this module only decides when and how that reaches disk
(atomic replace, so a crash never leaves half a file).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import proto
from google.protobuf import json_format
from google.protobuf.message import Message as PbMessage

from govctl.errors import GovctlError


def to_jsonable(msg: Any) -> dict[str, Any]:
    """A proto-plus or raw protobuf message as a JSON-able dict (round-trips exactly)."""
    pb = type(msg).pb(msg) if isinstance(msg, proto.Message) else msg
    out: dict[str, Any] = json_format.MessageToDict(pb, preserving_proto_field_name=True)
    return out


def from_jsonable(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of :func:`to_jsonable` for ``cls`` (proto-plus class or pb2 class)."""
    if issubclass(cls, proto.Message):
        pb = cls.pb()()  # type: ignore[attr-defined]
        json_format.ParseDict(data, pb, ignore_unknown_fields=True)
        return cls.wrap(pb)  # type: ignore[attr-defined]
    assert issubclass(cls, PbMessage)
    out = cls()
    json_format.ParseDict(data, out, ignore_unknown_fields=True)
    return out


class StateFile:
    """``state.json`` in a state directory; ``None`` keeps everything in memory."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        return self.directory / "state.json" if self.directory else None

    def load(self) -> dict[str, Any]:
        path = self.path
        if path is None or not path.exists():
            return {}
        try:
            with path.open(encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError too
            raise self.unreadable(f"{type(err).__name__}: {err}") from None
        if not isinstance(data, dict):
            raise self.unreadable("not a JSON object")
        return data

    def unreadable(self, why: str) -> GovctlError:
        path = self.path
        assert path is not None
        return GovctlError(
            f"cannot read the emulator state {path} ({why})",
            fix=f"move it aside (`mv {path} {path}.bad`) to start with no jobs, schedules or "
            "policies; stored objects (storage/) are kept",
        )

    def save(self, data: dict[str, Any]) -> None:
        path = self.path
        if path is None:
            return
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, separators=(",", ":"))
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
