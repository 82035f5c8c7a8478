"""Cloud Run's long-running operations (``projects/P/locations/R/operations/ID``).

Create/Update/Delete finish at once; RunJob (and CancelExecution, when the tasks take a
moment to die) stay pending until their execution ends. Clients poll GetOperation or block in
WaitOperation, served for every service by :mod:`govctl.emulator.operations`: Cloud Run's
store takes every operation name no other service claims.
"""

from __future__ import annotations

import uuid
from typing import Any

from google.longrunning import operations_pb2

from govctl.emulator.operations import Operations, Owner
from govctl.emulator.rpc import invalid_argument
from govctl.emulator.run import names


class RunOperations(Operations):
    """Operations named under a location, listed with the ``done`` filter Cloud Run offers."""

    def __init__(self, service: Owner) -> None:
        super().__init__(service, check_name=names.check_operation, listing=self._listing)

    def start(
        self, parent: str, metadata: Any, response: Any | None = None, *, store: bool = True
    ) -> operations_pb2.Operation:
        """A new operation under ``parent`` (``projects/P/locations/R``)."""
        return self.new(f"{parent}/operations/{uuid.uuid4()}", metadata, response, store=store)

    def finished(
        self, parent: str, resource: Any, *, store: bool = True
    ) -> operations_pb2.Operation:
        """A done operation whose metadata and response are ``resource`` (Create/Update/Delete)."""
        return self.start(parent, resource, resource, store=store)

    def _listing(self, request: operations_pb2.ListOperationsRequest) -> list[Any]:
        parent = names.parse_parent(request.name, "name")
        done = _parse_filter(request.filter)
        prefix = f"{parent}/operations/"
        return [
            op for op in self if op.name.startswith(prefix) and (done is None or op.done == done)
        ]


def _parse_filter(text: str) -> bool | None:
    """The one filter Cloud Run's operations list is used with: ``done = true|false``."""
    text = text.strip()
    if not text:
        return None
    parts = [p.strip() for p in text.split("=")]
    if len(parts) == 2 and parts[0] == "done" and parts[1].lower() in ("true", "false"):
        return parts[1].lower() == "true"
    raise invalid_argument(
        f"Unsupported filter {text!r}: the emulator supports 'done = true|false'"
    )
