"""Every cloud call ends: a deadline on each attempt, and an endpoint that is down said at once.

Why one place and not each call site: the client libraries leave many methods with no
deadline at all (``run_v2`` and ``artifactregistry_v1`` set none), give others 600 s
(``scheduler_v1``, ``cloudbuild_v1``), and retry UNAVAILABLE with backoff until then — which
is what a refused connection looks like. Against a stopped emulator, `govctl schedule show`
sat silent for minutes. The factory (:mod:`govctl.gcp.clients`) puts what is below on every
channel and every storage session it makes, so each call site stays as the library documents.

gRPC, by an interceptor on the channel (grpc's public ``intercept_channel``):

- a unary attempt gets at most :data:`ATTEMPT_S` (the caller's or library's timeout when
  shorter); a stream at most :data:`STREAM_S` (Cloud Logging ends a tail after an hour anyway);
- a connection that cannot be made (refused, no route, no DNS answer, no HTTP/2 handshake
  within gRPC's connect timeout) raises :class:`~govctl.errors.Unreachable` naming the endpoint
  and the fix. It is no ``grpc.RpcError``, so the libraries' retries let it through;
- an attempt that used up its deadline raises :class:`~govctl.errors.NoAnswer`: after
  :data:`ATTEMPT_S` of silence, another attempt mostly means as long again;
- a method that has answered nothing but UNAVAILABLE for :data:`RETRY_S` in this thread is
  not retried again (:class:`~govctl.errors.NoAnswer`).

A caller that must ride out an outage (a watcher) names these in its own retry's predicate.

Cloud Storage (its JSON API over ``requests``), by a transport adapter on the client's session:
connect within :data:`CONNECT_S`, read within :data:`ATTEMPT_S`; a refused connection raises
:class:`~govctl.errors.Unreachable`, a read timeout :class:`~govctl.errors.NoAnswer` — neither
is among the storage library's retryable types (``google.cloud.storage.retry``), so its
default retry (120 s) does not repeat them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from govctl.errors import NoAnswer, Unreachable

ATTEMPT_S = 30.0  # one unary call's attempt, and one HTTP read
STREAM_S = 3600.0  # a stream (TailLogEntries: Cloud Logging's own session limit is an hour)
CONNECT_S = 10.0  # a connection, gRPC or HTTP (a refused one fails at once)
RETRY_S = 20.0  # UNAVAILABLE answers in a row from one method before it is not retried again

# gRPC's connection backoff (grpc/grpc doc/connection-backoff.md): a connection attempt gets
# at least MIN_CONNECT_TIMEOUT (20 s), and attempts back off from 1 s up to 120 s. A listener
# that never answers is said after CONNECT_S instead (grpc core reads its minimum connect
# timeout from this option; measured: 10 s with it, 20 s without), and a long-lived client (a
# watch, `logs -f`) finds an emulator that is back within 5 s, not minutes.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.min_reconnect_backoff_ms", int(CONNECT_S * 1000)),
]

# gRPC's own words for a connection it could not make (grpc core's status details, as grpcio
# 1.85 words them for a refused, a black-holed and an unresolvable target).
_NO_CONNECTION = (
    "failed to connect to all addresses",
    "connection refused",
    "dns resolution failed",
    "errors resolving",
    "address lookup failed",
    "no route to host",
    "network is unreachable",
)


@dataclass(frozen=True)
class Endpoint:
    """Where calls go, and what to tell the operator when nothing answers there."""

    address: str  # HOST:PORT, or a URL for storage
    setting: str | None = None  # the setting that chose an emulator (None: Google)
    what: str = "the emulator"

    def unreachable(self, detail: str) -> Unreachable:
        reason = last_cause(detail)
        if self.setting is not None:
            if "refused" in reason.lower():
                state, act = "is not running", "`govctl emulator start`"
            else:  # something listens there and does not speak: a hung or foreign server
                state, act = f"does not answer ({reason})", "`govctl emulator status`"
            return Unreachable(
                f"{self.what} at {self.address} {state}",
                fix=f"{act}, or unset {self.setting} to use Google Cloud",
            )
        return Unreachable(
            f"cannot reach {self.address} ({reason})",
            fix="check your network/proxy (HTTPS_PROXY, NO_PROXY) and retry",
        )

    def silent(self, seconds: float) -> NoAnswer:
        return NoAnswer(
            f"{self.address} did not answer within {seconds:g} s",
            fix="retry; if it persists, check your network/proxy"
            if self.setting is None
            else "retry; `govctl emulator status` shows whether the emulator is alive",
        )


def last_cause(detail: str) -> str:
    """The innermost cause in an error text of nested causes ("a: b: Connection refused")."""
    cause = detail.rsplit(": ", 1)[-1].strip()
    for opener, closer in ("()", "[]"):
        while cause.endswith(closer) and cause.count(closer) > cause.count(opener):
            cause = cause[:-1].rstrip()
    return cause or detail


def no_connection(detail: str) -> bool:
    text = detail.lower()
    return any(words in text for words in _NO_CONNECTION)


class _Details(NamedTuple):
    """A call's details with its timeout bounded (grpc reads these attributes by name)."""

    method: Any
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


def _bounded(details: Any, limit: float) -> _Details:
    timeout = details.timeout
    return _Details(
        details.method,
        limit if timeout is None else min(timeout, limit),
        details.metadata,
        details.credentials,
        getattr(details, "wait_for_ready", None),
        getattr(details, "compression", None),
    )


class _Interceptor:
    """The deadlines and the endpoint's errors for every call on one channel."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._local = threading.local()

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        bounded = _bounded(details, ATTEMPT_S)
        return self._judge(details.method, bounded.timeout, continuation(bounded, request))

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        bounded = _bounded(details, ATTEMPT_S)
        return self._judge(details.method, bounded.timeout, continuation(bounded, requests))

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return _Stream(continuation(_bounded(details, STREAM_S), request), self.endpoint)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return _Stream(continuation(_bounded(details, STREAM_S), requests), self.endpoint)

    def _judge(self, method: Any, timeout: float | None, outcome: Any) -> Any:
        """``outcome`` of a blocking call: its result, or the ``grpc.RpcError`` it ended with."""
        import grpc

        unavailable: dict[Any, float] = self._local.__dict__.setdefault("unavailable", {})
        if not isinstance(outcome, grpc.RpcError) or not _settled(outcome):
            unavailable.pop(method, None)
            return outcome
        code, detail = outcome.code(), outcome.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            if no_connection(detail):
                raise self.endpoint.unreachable(detail)
            since = unavailable.setdefault(method, time.monotonic())
            if time.monotonic() - since >= RETRY_S:
                del unavailable[method]
                raise self.endpoint.silent(RETRY_S)
            return outcome
        unavailable.pop(method, None)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise self.endpoint.silent(timeout or ATTEMPT_S)
        return outcome


def _settled(outcome: Any) -> bool:
    done: Callable[[], bool] | None = getattr(outcome, "done", None)
    return done is None or done()


class _Stream:
    """A streaming call whose first failure to connect is said as :class:`Unreachable`.

    Everything else (``cancel``, ``add_callback``, metadata, …) is the call's own."""

    def __init__(self, call: Any, endpoint: Endpoint) -> None:
        self._call = call
        self._endpoint = endpoint

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        import grpc

        try:
            return next(self._call)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE and no_connection(err.details() or ""):
                raise self._endpoint.unreachable(err.details()) from None
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


def _register() -> None:
    """grpc accepts an interceptor by its abstract classes; registering avoids subclassing
    grpc's untyped classes."""
    import grpc

    for abstract in (
        grpc.UnaryUnaryClientInterceptor,
        grpc.UnaryStreamClientInterceptor,
        grpc.StreamUnaryClientInterceptor,
        grpc.StreamStreamClientInterceptor,
    ):
        abstract.register(_Interceptor)


_registered = threading.Lock()
_done = False


def intercept(channel: Any, endpoint: Endpoint) -> Any:
    """``channel`` with govctl's deadlines and errors on every call."""
    global _done
    import grpc

    with _registered:
        if not _done:
            _register()
            _done = True
    return grpc.intercept_channel(channel, _Interceptor(endpoint))


def http_adapter(endpoint: Endpoint) -> Any:
    """A ``requests`` transport adapter with the deadlines and errors above, for a storage
    client's session (mounted for ``http://`` and ``https://``)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    class Adapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            where = endpoint if endpoint.setting else Endpoint(urlsplit(request.url).netloc)
            kwargs["timeout"] = _http_timeout(kwargs.get("timeout"))
            try:
                return super().send(request, *args, **kwargs)
            except requests.exceptions.ConnectTimeout as err:
                raise where.unreachable(f"no connection within {CONNECT_S:g} s") from err
            except requests.exceptions.ReadTimeout as err:
                raise where.silent(kwargs["timeout"][1]) from err
            except requests.exceptions.ConnectionError as err:
                reason = getattr(err.args[0], "reason", None) if err.args else None
                if isinstance(reason, NewConnectionError):
                    raise where.unreachable(str(reason)) from err
                raise

    return Adapter()


def _http_timeout(given: Any) -> tuple[float, float]:
    read = given[1] if isinstance(given, tuple) else given
    return (CONNECT_S, ATTEMPT_S if read is None else min(float(read), ATTEMPT_S))
