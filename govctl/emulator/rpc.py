"""Serving Google's gRPC protocols without generated servicers.

Every emulated service declares its methods as plain functions ``fn(request, context)``
and registers them here. Handlers raise :class:`RpcError`; the wrapper turns it into the
status code and message a real Google API would return.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import grpc
import proto
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2

T = TypeVar("T")

Kind = Literal["unary_unary", "unary_stream", "stream_stream"]


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _status(code: grpc.StatusCode) -> Callable[[str], RpcError]:
    def error(message: str) -> RpcError:
        return RpcError(code, message)

    return error


# One constructor per status code the emulated services answer with.
invalid_argument = _status(grpc.StatusCode.INVALID_ARGUMENT)
not_found = _status(grpc.StatusCode.NOT_FOUND)
already_exists = _status(grpc.StatusCode.ALREADY_EXISTS)
failed_precondition = _status(grpc.StatusCode.FAILED_PRECONDITION)
aborted = _status(grpc.StatusCode.ABORTED)
permission_denied = _status(grpc.StatusCode.PERMISSION_DENIED)
unavailable = _status(grpc.StatusCode.UNAVAILABLE)


@dataclass(frozen=True)
class Method:
    fn: Callable[..., Any]
    request: type
    response: type
    kind: Kind = "unary_unary"


def _codec(cls: type) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    if isinstance(cls, type) and issubclass(cls, proto.Message):

        def serialize(msg: Any) -> bytes:
            # Handlers may return either the proto-plus wrapper or its raw pb.
            if isinstance(msg, proto.Message):
                return type(msg).serialize(msg)
            return msg.SerializeToString()

        return cls.deserialize, serialize  # type: ignore[attr-defined]
    return cls.FromString, lambda msg: msg.SerializeToString()  # type: ignore[attr-defined]


def _guard_unary(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except RpcError as err:
            context.abort(err.code, err.message)

    return call


def _guard_stream(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from fn(request, context)
        except RpcError as err:
            context.abort(err.code, err.message)

    return call


def service(full_name: str, methods: dict[str, Method]) -> grpc.GenericRpcHandler:
    """A generic handler for ``full_name`` (e.g. ``google.cloud.run.v2.Jobs``)."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for name, m in methods.items():
        deserialize, _ = _codec(m.request)
        _, serialize = _codec(m.response)
        if m.kind == "unary_unary":
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                _guard_unary(m.fn), request_deserializer=deserialize, response_serializer=serialize
            )
        elif m.kind == "unary_stream":
            handlers[name] = grpc.unary_stream_rpc_method_handler(
                _guard_stream(m.fn), request_deserializer=deserialize, response_serializer=serialize
            )
        else:
            handlers[name] = grpc.stream_stream_rpc_method_handler(
                _guard_stream(m.fn), request_deserializer=deserialize, response_serializer=serialize
            )
    return grpc.method_handlers_generic_handler(full_name, handlers)


def pack(msg: Any) -> any_pb2.Any:
    """A proto-plus or raw protobuf message as ``Any`` (operation metadata and responses)."""
    out = any_pb2.Any()
    out.Pack(type(msg).pb(msg) if isinstance(msg, proto.Message) else msg)
    return out


def operation(name: str, metadata: Any, response: Any | None = None) -> operations_pb2.Operation:
    """A long-running operation; done, with ``response``, when a response is given."""
    op = operations_pb2.Operation(name=name)
    op.metadata.CopyFrom(pack(metadata))
    if response is not None:
        op.done = True
        op.response.CopyFrom(pack(response))
    return op


def routing_params(context: grpc.ServicerContext) -> dict[str, str]:
    """The ``x-goog-request-params`` routing header, decoded."""
    from urllib.parse import parse_qsl

    for key, value in context.invocation_metadata():
        if key == "x-goog-request-params":
            return dict(parse_qsl(value if isinstance(value, str) else value.decode()))
    return {}


def page(
    items: Sequence[T],
    page_size: int,
    page_token: str,
    *,
    default_size: int = 100,
    max_size: int = 1000,
) -> tuple[list[T], str]:
    """Offset paging with an opaque token, as Google list methods page.

    ``page_size`` 0 means the service default; larger than ``max_size`` is clamped, as the
    real APIs do; a negative size or a token this server did not issue is INVALID_ARGUMENT.
    """
    if page_size < 0:
        raise invalid_argument(f"page_size must be >= 0, got {page_size}")
    size = min(page_size or default_size, max_size)
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode().removeprefix("o:"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise invalid_argument(f"invalid page_token {page_token!r}") from None
        if start < 0 or start > len(items):
            raise invalid_argument(f"invalid page_token {page_token!r}")
    end = start + size
    token = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if end < len(items) else ""
    return list(items[start:end]), token


def wait_operation(
    request: operations_pb2.WaitOperationRequest,
    context: grpc.ServicerContext,
    cond: threading.Condition,
    get: Callable[[], operations_pb2.Operation],
    stopping: threading.Event,
    cap: float = 60.0,
) -> operations_pb2.Operation:
    """``google.longrunning.Operations/WaitOperation``: the operation once done, or as it is
    when the request's timeout (at most ``cap``), the caller's deadline or the emulator's stop
    comes first. ``get`` is called under ``cond``, which is notified on every change."""
    timeout = cap
    if request.HasField("timeout"):
        timeout = min(request.timeout.ToTimedelta().total_seconds(), cap)
    remaining = context.time_remaining()
    if remaining is not None:
        timeout = min(timeout, max(0.0, remaining - 0.05))  # answer before the caller gives up
    deadline = time.monotonic() + timeout
    with cond:
        op = get()
        while not op.done and not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            cond.wait(min(left, 0.5))
            op = get()
        return op


def operations_service(owner: Any) -> grpc.GenericRpcHandler:
    """``google.longrunning.Operations`` served by ``owner``'s ``get_operation``,
    ``wait_operation``, ``list_operations`` and ``delete_operation``."""
    o = operations_pb2
    return service(
        "google.longrunning.Operations",
        {
            "GetOperation": Method(owner.get_operation, o.GetOperationRequest, o.Operation),
            "WaitOperation": Method(owner.wait_operation, o.WaitOperationRequest, o.Operation),
            "ListOperations": Method(
                owner.list_operations, o.ListOperationsRequest, o.ListOperationsResponse
            ),
            "DeleteOperation": Method(
                owner.delete_operation, o.DeleteOperationRequest, empty_pb2.Empty
            ),
        },
    )


class OwnOperations:
    """``google.longrunning.Operations`` for one service's own operations (``ops``, guarded by
    ``cond``); every name ``mine`` rejects goes to ``fallback()``, the next service's handler.
    One gRPC server carries every API, so the first registered handler of the service name
    answers for all of them: Discovery Engine hands on to Cloud Build, which hands on to Run.
    ListOperations stays with each service (``list_mine`` and ``listing``): they list
    differently."""

    def __init__(
        self,
        ops: dict[str, operations_pb2.Operation],
        cond: threading.Condition,
        stopping: threading.Event,
        changed: Callable[[], None],
        *,
        mine: Callable[[str], bool],
        list_mine: Callable[[str], bool],
        listing: Callable[[operations_pb2.ListOperationsRequest], list[operations_pb2.Operation]],
        fallback: Callable[[], Any],
    ) -> None:
        self._ops, self._cond, self._stopping, self._changed = ops, cond, stopping, changed
        self._mine, self._list_mine, self._listing = mine, list_mine, listing
        self._fallback = fallback

    def get(self, name: str) -> operations_pb2.Operation:
        """The stored operation (not a copy; callers hold the lock)."""
        op = self._ops.get(name)
        if op is None:
            raise not_found(f"Operation {name} not found.")
        return op

    def get_operation(self, request: operations_pb2.GetOperationRequest, context: Any) -> Any:
        if not self._mine(request.name):
            return self._fallback().get_operation(request, context)
        with self._cond:
            return copy_operation(self.get(request.name))

    def wait_operation(self, request: operations_pb2.WaitOperationRequest, context: Any) -> Any:
        if not self._mine(request.name):
            return self._fallback().wait_operation(request, context)
        get = lambda: self.get(request.name)  # noqa: E731
        return copy_operation(wait_operation(request, context, self._cond, get, self._stopping))

    def list_operations(self, request: operations_pb2.ListOperationsRequest, context: Any) -> Any:
        if not self._list_mine(request.name):
            return self._fallback().list_operations(request, context)
        with self._cond:
            ops = [copy_operation(op) for op in self._listing(request)]
        chunk, token = page(ops, request.page_size, request.page_token)
        return operations_pb2.ListOperationsResponse(operations=chunk, next_page_token=token)

    def delete_operation(self, request: operations_pb2.DeleteOperationRequest, context: Any) -> Any:
        if not self._mine(request.name):
            return self._fallback().delete_operation(request, context)
        with self._cond:
            self.get(request.name)
            del self._ops[request.name]
            self._changed()
        return empty_pb2.Empty()

    def handler(self) -> grpc.GenericRpcHandler:
        return operations_service(self)


def copy_operation(op: operations_pb2.Operation) -> operations_pb2.Operation:
    out = operations_pb2.Operation()
    out.CopyFrom(op)
    return out
