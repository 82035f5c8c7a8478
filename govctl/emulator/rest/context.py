"""The ``grpc.ServicerContext`` a servicer sees when the REST gateway calls it.

Servicers use ``abort``/``abort_with_status`` (turned into Google's error envelope),
``invocation_metadata`` (the ``x-goog-request-params`` routing header a GAPIC client would
send, made from the path variables), ``time_remaining`` (no deadline over REST: None) and,
for streams, ``is_active``/``add_callback`` (the HTTP client went away).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlencode

import grpc
from google.rpc import status_pb2

from govctl.emulator.rest.errors import RestError

_DETAILS_KEY = "grpc-status-details-bin"


class RestContext:
    def __init__(self, routing: dict[str, str] | None = None) -> None:
        self._metadata: tuple[tuple[str, str], ...] = ()
        if routing:
            self._metadata = (("x-goog-request-params", urlencode(routing)),)
        self._active = True
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    # what the servicers call -------------------------------------------------------------------
    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise RestError(code, details)

    def abort_with_status(self, status: Any) -> NoReturn:
        for key, value in status.trailing_metadata or ():
            if key == _DETAILS_KEY:
                raise RestError.from_status(status_pb2.Status.FromString(value))
        raise RestError(status.code, status.details)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return self._active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if not self._active:
                return False
            self._callbacks.append(callback)
        return True

    def peer(self) -> str:
        return "rest"

    # what the gateway calls ------------------------------------------------------------------
    def end(self) -> None:
        """The HTTP exchange is over (answered, or the client went away)."""
        with self._lock:
            self._active = False
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
