"""Every RPC the emulator serves, in one place: served over gRPC here, over REST by a gateway.

Each :class:`~govctl.emulator.cloud.Service` returns :class:`~govctl.emulator.apis.Bound` tables
from ``rpcs()`` (an API read from Google's client library, plus handlers). :func:`build` turns
them into a :class:`Registry` of :class:`ServedApi` — one per gRPC service name — whose
:class:`Endpoint` s carry everything a transport needs: the method descriptor (input/output
types, streaming, the ``google.api.http`` rule as a method option), the message classes the
handler takes and returns, and the handler. ``google.longrunning.Operations`` is one entry for
all services (the first owner of an operation name answers, see :mod:`.operations`); it also
lists the HTTP paths under which each API exposes it (``Endpoint.http_rules``).

Handlers raise :class:`~govctl.emulator.rpc.RpcError`; :meth:`Endpoint.grpc_handler` turns it
into the gRPC status (its details in ``grpc-status-details-bin``), a gateway into Google's JSON
error envelope.

**Disabled APIs.** :func:`build` takes a ``gate``: called with the API of each call
(``run.googleapis.com``, see :mod:`.consumer`) and the project its request names, it raises
the RpcError Google answers when that API is disabled in that project (PERMISSION_DENIED,
``SERVICE_DISABLED``). Every endpoint's handler is wrapped once here, so gRPC, the REST
gateway and the Run v1 view all refuse alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import proto
from google.api import http_pb2
from google.protobuf import descriptor
from google.protobuf.message import Message as PbMessage

from govctl.emulator.apis import Api, Bound, Handler, Kind, MethodSpec, is_proto_plus, pb_class
from govctl.emulator.consumer import api_of, consumer
from govctl.emulator.rpc import RpcError

# (API, project as the request names it) -> None, or raises the RpcError of a disabled API.
Gate = Callable[[str, str], None]


@dataclass(frozen=True)
class Endpoint:
    """One served method.

    ``request`` is the class ``handler`` receives (proto-plus, or the raw ``_pb2`` class when
    the service asked for raw requests); ``response`` the class it is declared to return
    (handlers may return the proto-plus message or its raw pb: :meth:`response_pb` takes both).
    """

    service: str
    spec: MethodSpec
    request: type
    handler: Handler
    extra_http: tuple[http_pb2.HttpRule, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def path(self) -> str:
        """The gRPC path, ``/google.cloud.run.v2.Jobs/CreateJob``."""
        return f"/{self.service}/{self.name}"

    @property
    def descriptor(self) -> descriptor.MethodDescriptor:
        return self.spec.descriptor

    @property
    def response(self) -> type:
        return self.spec.response

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    @property
    def http_rules(self) -> tuple[http_pb2.HttpRule, ...]:
        """Every HTTP rule that routes to this method: the proto's own, then those of the APIs
        that mix it in (Operations under ``/v2/projects/*/locations/*/operations/*``, …)."""
        return (*self.spec.http_rules, *self.extra_http)

    def request_pb_class(self) -> type[PbMessage]:
        """The raw protobuf class of the request (what JSON or bytes parse into)."""
        return pb_class(self.request)

    def request_from_pb(self, pb: PbMessage) -> Any:
        """A parsed raw request as ``handler`` takes it."""
        wrapper: Any = self.request
        return wrapper.wrap(pb) if is_proto_plus(wrapper) else pb

    def response_pb(self, response: Any) -> PbMessage:
        """A handler's response as its raw protobuf message."""
        raw: Any = type(response).pb(response) if isinstance(response, proto.Message) else response
        if not isinstance(raw, PbMessage):
            raise TypeError(f"{self.path} returned {type(response).__name__}")
        return raw

    def grpc_handler(self) -> grpc.RpcMethodHandler:
        parse = self.request_pb_class().FromString

        def deserialize(data: bytes) -> Any:
            return self.request_from_pb(parse(data))

        def serialize(response: Any) -> bytes:
            data: bytes = self.response_pb(response).SerializeToString()
            return data

        make, guarded = _GRPC[self.kind]
        handler: grpc.RpcMethodHandler = make(
            guarded(self.handler), request_deserializer=deserialize, response_serializer=serialize
        )
        return handler


@dataclass(frozen=True)
class ServedApi:
    """One gRPC service the emulator serves: name, descriptor and served methods."""

    full_name: str
    descriptor: descriptor.ServiceDescriptor
    methods: Mapping[str, Endpoint]

    def grpc_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            self.full_name, {name: m.grpc_handler() for name, m in self.methods.items()}
        )


class Registry:
    """The served APIs, in the order the services registered them; iterate it."""

    def __init__(self, apis: Iterable[ServedApi]) -> None:
        self._apis = {api.full_name: api for api in apis}

    def __iter__(self) -> Iterator[ServedApi]:
        return iter(self._apis.values())

    def __getitem__(self, full_name: str) -> ServedApi:
        return self._apis[full_name]

    def __contains__(self, full_name: object) -> bool:
        return full_name in self._apis

    def endpoints(self) -> Iterator[Endpoint]:
        for api in self._apis.values():
            yield from api.methods.values()

    def grpc_handlers(self) -> list[grpc.GenericRpcHandler]:
        return [api.grpc_handler() for api in self._apis.values()]


def build(tables: Iterable[Bound], gate: Gate | None = None) -> Registry:
    """The registry of ``tables``; two tables for one API are an error, except that each
    API's ``mixin_http`` rules are added to the mixed-in method's endpoint. With ``gate``,
    every call of an API with a Service Usage name is checked against it first."""
    tables = list(tables)
    extra: dict[str, list[http_pb2.HttpRule]] = {}
    for table in tables:
        for method, rules in table.api.mixin_http.items():
            known = extra.setdefault(method, [])
            known.extend(r for r in rules if r not in known)
    served: list[ServedApi] = []
    for table in tables:
        if any(s.full_name == table.api.full_name for s in served):
            raise ValueError(f"{table.api.full_name} is bound twice")
        served.append(_served(table, extra, gate))
    return Registry(served)


def _served(
    table: Bound, extra: Mapping[str, list[http_pb2.HttpRule]], gate: Gate | None
) -> ServedApi:
    api: Api = table.api
    service = api_of(api.full_name)
    methods = {}
    for name, handler in table.handlers.items():
        spec = api.methods[name]
        request = pb_class(spec.request) if table.raw else spec.request
        more = tuple(extra.get(f"{api.full_name}.{name}", ()))
        if gate is not None and service is not None:
            handler = _gated(handler, spec.kind, service, gate)
        methods[name] = Endpoint(api.full_name, spec, request, handler, more)
    return ServedApi(api.full_name, api.descriptor, methods)


def _check(request: Any, context: grpc.ServicerContext, service: str, gate: Gate) -> None:
    raw = type(request).pb(request) if isinstance(request, proto.Message) else request
    if not isinstance(raw, PbMessage):
        return
    # A handler called directly (no transport) may be given no context.
    metadata = context.invocation_metadata() if context is not None else ()
    project = consumer(service, raw, metadata)
    if project:
        gate(service, project)


def _gated(handler: Handler, kind: Kind, service: str, gate: Gate) -> Handler:
    """``handler``, refusing first a call whose API is disabled in the request's project; a
    streamed request is judged by its first message (which names the resource)."""
    if kind in ("unary_unary", "unary_stream"):

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            _check(request, context, service, gate)
            return handler(request, context)

        return unary

    def streamed(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        first = next(requests, None)
        if first is None:
            return handler(iter(()), context)
        _check(first, context, service, gate)
        return handler(itertools.chain([first], requests), context)

    return streamed


# RpcError → gRPC status ------------------------------------------------------------------------


def _abort(context: grpc.ServicerContext, err: RpcError) -> None:
    if not err.details:
        context.abort(err.code, err.message)
    from google.rpc import status_pb2
    from grpc_status import rpc_status

    status = status_pb2.Status(code=err.code.value[0], message=err.message, details=err.details)
    context.abort_with_status(rpc_status.to_status(status))


def _guard_unary(fn: Handler) -> Handler:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except RpcError as err:
            _abort(context, err)

    return call


def _guard_stream(fn: Handler) -> Handler:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from fn(request, context)
        except RpcError as err:
            _abort(context, err)

    return call


_GRPC: dict[Kind, tuple[Callable[..., Any], Callable[[Handler], Handler]]] = {
    "unary_unary": (grpc.unary_unary_rpc_method_handler, _guard_unary),
    "unary_stream": (grpc.unary_stream_rpc_method_handler, _guard_stream),
    "stream_unary": (grpc.stream_unary_rpc_method_handler, _guard_unary),
    "stream_stream": (grpc.stream_stream_rpc_method_handler, _guard_stream),
}
