"""What every handler of the loopback cloud shares: errors, operations, paging.

Handlers are plain functions ``fn(request, context)`` (see :mod:`govctl.emulator.apis` for how
they are bound to Google's APIs). They raise :class:`RpcError`; the transport turns it into the
status code and message a real Google API would return.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import proto
from google.longrunning import operations_pb2
from google.protobuf import any_pb2

T = TypeVar("T")
R = TypeVar("R")


class RpcError(Exception):
    """A status a handler answers with: its code, message and ``google.rpc.Status`` details
    (``Any``-packed ``ErrorInfo`` and the like; gRPC carries them in ``grpc-status-details-bin``,
    REST in the JSON envelope's ``details``)."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[any_pb2.Any] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)


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


def service_disabled(service: str, title: str, project: str) -> RpcError:
    """What Google answers a call to an API that is disabled in the consumer project.

    PERMISSION_DENIED with an ``ErrorInfo`` of reason ``SERVICE_DISABLED`` in the domain
    ``googleapis.com``, metadata ``consumer`` and ``service`` (googleapis
    ``google/api/error_reason.proto``, ``ErrorReason.SERVICE_DISABLED``), plus the
    ``serviceTitle``, ``containerInfo`` and ``activationUrl`` keys and the message production
    sends (as quoted in google-gemini/gemini-cli#1343 and googleapis/google-api-nodejs-client
    #2873); ``project`` as the request named it.
    """
    from google.rpc import error_details_pb2

    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={project}"
    info = error_details_pb2.ErrorInfo(
        reason="SERVICE_DISABLED",
        domain="googleapis.com",
        metadata={
            "service": service,
            "serviceTitle": title,
            "consumer": f"projects/{project}",
            "containerInfo": project,
            "activationUrl": url,
        },
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    message = (
        f"{title} has not been used in project {project} before or it is disabled. Enable it "
        f"by visiting {url} then retry. If you enabled this API recently, wait a few minutes "
        "for the action to propagate to our systems and retry."
    )
    return RpcError(grpc.StatusCode.PERMISSION_DENIED, message, [detail])


def matched(pattern: re.Pattern[str], value: str, message: str) -> re.Match[str]:
    """``value`` matched whole against a resource-name ``pattern``, or INVALID_ARGUMENT with
    ``message`` (which names the value and the expected form)."""
    m = pattern.fullmatch(value)
    if not m:
        raise invalid_argument(message)
    return m


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


@dataclass(frozen=True)
class Paging:
    """How an API pages a List (google.aip.dev/158): ``default`` items when the request says
    no ``page_size``, at most ``maximum``; ``total_size`` when its responses carry that field."""

    default: int = 100
    maximum: int = 1000
    total_size: bool = False

    def respond(
        self, response: Callable[..., R], field: str, items: Sequence[Any], request: Any
    ) -> R:
        """The page of ``items`` that ``request`` (``page_size``, ``page_token``) asks for, as a
        ``response`` with the items in ``field`` and ``next_page_token``."""
        chunk, token = page(
            items,
            request.page_size,
            request.page_token,
            default_size=self.default,
            max_size=self.maximum,
        )
        extra = {"total_size": len(items)} if self.total_size else {}
        return response(**{field: chunk}, next_page_token=token, **extra)


def paged(response: Callable[..., R], field: str, items: Sequence[Any], request: Any) -> R:
    """:meth:`Paging.respond` with the usual sizes (100 by default, at most 1000)."""
    return Paging().respond(response, field, items, request)


def refuse_filter(text: str, method: str) -> None:
    """The emulator refuses a list filter it does not evaluate, rather than ignore it."""
    if text:
        raise invalid_argument(f"The emulator does not support a filter on {method}.")


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
