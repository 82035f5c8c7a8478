"""``google.longrunning.Operations`` for the Cloud Run Admin API.

Create/Update/Delete finish at once; RunJob (and CancelExecution, when the tasks take a
moment to die) stay pending until their execution ends. Clients poll GetOperation or
block in WaitOperation.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from govctl.emulator import rpc
from govctl.emulator.rpc import invalid_argument, not_found, pack
from govctl.emulator.run import names
from govctl.emulator.state import from_jsonable, to_jsonable

# WaitOperation without a timeout returns after this long, as a server may (AIP-151).
DEFAULT_WAIT = 60.0


class OperationStore:
    """Operations of one service; shares the service's lock so state changes and wake-ups agree."""

    def __init__(self, lock: threading.RLock, changed: Any) -> None:
        self._ops: dict[str, operations_pb2.Operation] = {}
        self._cond = threading.Condition(lock)
        self._changed = changed
        self.stopping = threading.Event()

    # mutation (callers hold the lock or not; the condition takes it) ----------------------
    def new(
        self, parent: str, metadata: Any, response: Any | None = None, *, store: bool = True
    ) -> operations_pb2.Operation:
        """A new operation; done when ``response`` is given. ``store=False`` for validate_only."""
        op = rpc.operation(f"{parent}/operations/{uuid.uuid4()}", metadata, response)
        if store:
            with self._cond:
                self._ops[op.name] = op
                self._changed()
        return _copy(op)

    def finished(
        self, parent: str, resource: Any, *, store: bool = True
    ) -> operations_pb2.Operation:
        """A done operation whose metadata and response are ``resource`` (Create/Update/Delete)."""
        return self.new(parent, resource, resource, store=store)

    def update_metadata(self, name: str, metadata: Any) -> None:
        with self._cond:
            op = self._ops.get(name)
            if op is not None and not op.done:
                op.metadata.CopyFrom(pack(metadata))
                self._changed()

    def finish(
        self,
        name: str,
        metadata: Any,
        response: Any | None = None,
        error: tuple[int, str] | None = None,
    ) -> None:
        with self._cond:
            op = self._ops.get(name)
            if op is None or op.done:
                return
            op.metadata.CopyFrom(pack(metadata))
            if error is not None:
                op.error.CopyFrom(status_pb2.Status(code=error[0], message=error[1]))
            else:
                op.response.CopyFrom(pack(response if response is not None else metadata))
            op.done = True
            self._changed()
            self._cond.notify_all()

    def pending(self) -> list[str]:
        with self._cond:
            return [name for name, op in self._ops.items() if not op.done]

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> list[dict[str, Any]]:
        return [to_jsonable(op) for op in self._ops.values()]

    def load(self, data: list[dict[str, Any]]) -> None:
        self._ops = {}
        for item in data:
            op = from_jsonable(operations_pb2.Operation, item)
            self._ops[op.name] = op

    # RPCs -----------------------------------------------------------------------------------
    def get_operation(
        self, request: operations_pb2.GetOperationRequest, context: grpc.ServicerContext
    ) -> operations_pb2.Operation:
        names.check_operation(request.name)
        with self._cond:
            return _copy(self._get(request.name))

    def list_operations(
        self, request: operations_pb2.ListOperationsRequest, context: grpc.ServicerContext
    ) -> operations_pb2.ListOperationsResponse:
        parent = names.parse_parent(request.name, "name")
        done_filter = _parse_filter(request.filter)
        prefix = f"{parent}/operations/"
        with self._cond:
            ops = [
                _copy(op)
                for op in self._ops.values()
                if op.name.startswith(prefix) and (done_filter is None or op.done == done_filter)
            ]
        chunk, token = rpc.page(ops, request.page_size, request.page_token)
        return operations_pb2.ListOperationsResponse(operations=chunk, next_page_token=token)

    def delete_operation(
        self, request: operations_pb2.DeleteOperationRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        names.check_operation(request.name)
        with self._cond:
            self._get(request.name)
            del self._ops[request.name]
            self._changed()
        return empty_pb2.Empty()

    def wait_operation(
        self, request: operations_pb2.WaitOperationRequest, context: grpc.ServicerContext
    ) -> operations_pb2.Operation:
        names.check_operation(request.name)
        op = rpc.wait_operation(
            request, context, self._cond, lambda: self._get(request.name), self.stopping,
            DEFAULT_WAIT,
        )  # fmt: skip
        return _copy(op)

    def _get(self, name: str) -> operations_pb2.Operation:
        op = self._ops.get(name)
        if op is None:
            raise not_found(f"Operation {name} not found.")
        return op

    def handler(self) -> grpc.GenericRpcHandler:
        return rpc.operations_service(self)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def _copy(op: operations_pb2.Operation) -> operations_pb2.Operation:
    out = operations_pb2.Operation()
    out.CopyFrom(op)
    return out


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
