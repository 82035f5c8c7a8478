"""Google's JSON error envelope, and the HTTP status of each gRPC code.

The envelope is ``google.rpc.Status`` in proto3 JSON under ``"error"``, with the code's name
as ``status`` (https://cloud.google.com/apis/design/errors#http_mapping): ``{"error": {"code":
404, "message": "...", "status": "NOT_FOUND", "details": [...]}}``. The HTTP status of each
code is the mapping documented in googleapis ``google/rpc/code.proto``.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2

# google/rpc/code.proto: "HTTP Mapping: ..." of each code.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class RestError(Exception):
    """An error answered as Google's envelope."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: list[any_pb2.Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.http_status,
                "message": self.message,
                "status": self.code.name,
                "details": [json_format.MessageToDict(d) for d in self.details],
            }
        }

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> RestError:
        code = _BY_VALUE.get(status.code, grpc.StatusCode.UNKNOWN)
        return cls(code, status.message, list(status.details))


def bad_request(message: str, field: str = "") -> RestError:
    """INVALID_ARGUMENT with a ``google.rpc.BadRequest`` naming the violation, as Google's
    front end reports a request it cannot transcode."""
    detail = any_pb2.Any()
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
    detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return RestError(grpc.StatusCode.INVALID_ARGUMENT, message, [detail])


def not_found_path(method: str, path: str) -> RestError:
    return RestError(
        grpc.StatusCode.NOT_FOUND,
        f"The emulator serves no REST method for {method} {path} (see docs/emulator.md).",
    )
