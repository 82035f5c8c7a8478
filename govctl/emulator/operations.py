"""Long-running operations (google.aip.dev/151): one store per service, one gRPC service for all.

A service that answers with pending operations keeps them in an :class:`Operations` (its
``operations`` attribute) and says which names are its own (``claims``; the one store without
a claim — Cloud Run's — takes every other name). :class:`OperationsRouter` serves
``google.longrunning.Operations`` once for the whole emulator and sends each request to the
store that owns the name: one gRPC server carries every API, so only one handler may answer
for that service name. CancelOperation is not served (no emulated API needs it).

The store shares its service's lock (``cond`` is a condition on it), so a handler that changes
a resource and finishes its operation does both under one lock, and ``WaitOperation`` callers
wake on every change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import grpc
from google.longrunning import operations_pb2
from google.longrunning.operations_pb2 import Operation
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, pb2_api
from govctl.emulator.rpc import invalid_argument, not_found, pack
from govctl.emulator.state import from_jsonable, to_jsonable
from govctl.emulator.store import copy

# WaitOperation without a timeout returns after this long, as a server may (AIP-151).
DEFAULT_WAIT = 60.0


class Owner(Protocol):
    """What a store needs of its service (a :class:`govctl.emulator.cloud.Service`)."""

    lock: threading.RLock

    def changed(self) -> None: ...


class Operations:
    """The operations of one service, by name.

    ``claims(name)``: whether a Get/Wait/Delete of ``name`` is this store's (None: every name
    no other store claims). ``claims_list(parent)``: the same for ListOperations (default
    ``claims``). ``check_name`` validates a name before it is looked up (INVALID_ARGUMENT);
    ``listing`` overrides what ListOperations returns for a request (default: the operations
    under ``request.name``, filter refused). Subclass or pass hooks to change any of it.
    """

    def __init__(
        self,
        service: Owner,
        *,
        claims: Callable[[str], bool] | None = None,
        claims_list: Callable[[str], bool] | None = None,
        check_name: Callable[[str], object] | None = None,
        listing: Callable[[operations_pb2.ListOperationsRequest], list[Operation]] | None = None,
    ) -> None:
        self._ops: dict[str, Operation] = {}
        self.cond = threading.Condition(service.lock)
        self.stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._changed = service.changed
        self.claims = claims
        self.claims_list = claims_list or claims
        self._check_name = check_name
        self._listing = listing or self.under

    # reading and changing (callers may hold the service lock; the condition takes it) --------
    def __iter__(self) -> Iterator[Operation]:
        """The stored operations (not copies), oldest first; hold the lock while iterating."""
        return iter(list(self._ops.values()))

    def get(self, name: str) -> Operation | None:
        return self._ops.get(name)

    def require(self, name: str) -> Operation:
        """The stored operation (not a copy; callers hold the lock)."""
        op = self._ops.get(name)
        if op is None:
            raise not_found(f"Operation {name} not found.")
        return op

    def new(
        self, name: str, metadata: Any, response: Any | None = None, *, store: bool = True
    ) -> Operation:
        """A copy of a new operation; done when ``response`` is given. ``store=False`` answers
        without keeping it (``validate_only``, or an API whose operations are never polled)."""
        op = rpc.operation(name, metadata, response)
        if store:
            with self.cond:
                self._ops[op.name] = op
                self._changed()
        return copy(op)

    def update_metadata(self, name: str, metadata: Any) -> None:
        """New metadata for a pending operation (a done one is left as it ended)."""
        with self.cond:
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
        """End a pending operation with ``error`` (code, message) or ``response`` (default:
        the metadata), and wake its waiters."""
        with self.cond:
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
            self.cond.notify_all()

    def pending(self) -> list[str]:
        with self.cond:
            return [name for name, op in self._ops.items() if not op.done]

    def under(self, request: operations_pb2.ListOperationsRequest) -> list[Operation]:
        """The default listing: every operation under ``request.name``; no filter."""
        rpc.refuse_filter(request.filter, "ListOperations")
        prefix = request.name.rstrip("/") + "/"
        return [op for name, op in self._ops.items() if name.startswith(prefix)]

    # work behind operations and the emulator's stop -----------------------------------------
    def work(self, target: Callable[..., object], *args: object, name: str) -> None:
        """Run the work of an operation (a build, an import) on a daemon thread; the work
        watches :attr:`stopping` and leaves its operation pending when it is set."""
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._workers.append(thread)
        thread.start()

    def wake(self) -> None:
        """The emulator is stopping: WaitOperation callers get the operation as it stands."""
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()

    def join(self, timeout: float) -> None:
        """Stop: wake everyone, then wait up to ``timeout`` for each worker."""
        self.wake()
        for thread in self._workers:
            thread.join(timeout=timeout)

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> list[dict[str, Any]]:
        return [to_jsonable(op) for op in self._ops.values()]

    def load(self, data: Sequence[dict[str, Any]]) -> None:
        ops = (from_jsonable(Operation, item) for item in data)
        self._ops = {op.name: op for op in ops}

    # google.longrunning.Operations ------------------------------------------------------------
    def check(self, name: str) -> None:
        if self._check_name is not None:
            self._check_name(name)

    def get_operation(self, request: operations_pb2.GetOperationRequest, context: Any) -> Operation:
        self.check(request.name)
        with self.cond:
            return copy(self.require(request.name))

    def wait_operation(
        self, request: operations_pb2.WaitOperationRequest, context: grpc.ServicerContext
    ) -> Operation:
        self.check(request.name)
        get = lambda: self.require(request.name)  # noqa: E731
        return copy(
            rpc.wait_operation(request, context, self.cond, get, self.stopping, DEFAULT_WAIT)
        )

    def list_operations(
        self, request: operations_pb2.ListOperationsRequest, context: Any
    ) -> operations_pb2.ListOperationsResponse:
        with self.cond:
            ops = [copy(op) for op in self._listing(request)]
        return rpc.paged(operations_pb2.ListOperationsResponse, "operations", ops, request)

    def delete_operation(
        self, request: operations_pb2.DeleteOperationRequest, context: Any
    ) -> empty_pb2.Empty:
        self.check(request.name)
        with self.cond:
            self.require(request.name)
            del self._ops[request.name]
            self._changed()
        return empty_pb2.Empty()


class OperationsRouter:
    """``google.longrunning.Operations`` for every service's :class:`Operations`."""

    def __init__(self, stores: Sequence[Operations]) -> None:
        self._claiming = [s for s in stores if s.claims is not None]
        rest = [s for s in stores if s.claims is None]
        if len(rest) > 1:
            raise ValueError("only one operations store may take the names no other claims")
        self._default = rest[0] if rest else None

    def owner(self, name: str, *, listing: bool = False) -> Operations:
        for store in self._claiming:
            claim = store.claims_list if listing else store.claims
            if claim is not None and claim(name):
                return store
        if self._default is None:
            raise (invalid_argument if listing else not_found)(
                f"{'Operations under ' if listing else 'Operation '}{name} not found."
            )
        return self._default

    def get_operation(self, request: operations_pb2.GetOperationRequest, context: Any) -> Operation:
        return self.owner(request.name).get_operation(request, context)

    def wait_operation(
        self, request: operations_pb2.WaitOperationRequest, context: grpc.ServicerContext
    ) -> Operation:
        return self.owner(request.name).wait_operation(request, context)

    def list_operations(self, request: operations_pb2.ListOperationsRequest, context: Any) -> Any:
        return self.owner(request.name, listing=True).list_operations(request, context)

    def delete_operation(self, request: operations_pb2.DeleteOperationRequest, context: Any) -> Any:
        return self.owner(request.name).delete_operation(request, context)

    def bind(self) -> Bound:
        api = pb2_api(operations_pb2.DESCRIPTOR.services_by_name["Operations"])
        return api.bind(
            {
                "GetOperation": self.get_operation,
                "WaitOperation": self.wait_operation,
                "ListOperations": self.list_operations,
                "DeleteOperation": self.delete_operation,
            }
        )
