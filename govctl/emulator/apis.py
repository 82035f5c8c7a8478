"""What each Google API the emulator serves looks like, read from Google's own client libraries.

A service of the emulator never writes out its request and response types: it names the API
(:func:`gapic_api` for a GAPIC client package such as ``google.cloud.run_v2.services.jobs``,
:func:`pb2_api` for a compiled ``_pb2`` service such as ``google.longrunning.Operations``) and
maps method names to handlers (:meth:`Api.bind`). The result, a :class:`Bound` table, is what
:mod:`govctl.emulator.registry` serves over gRPC and what a REST gateway transcodes to.

Where the facts come from. The proto-plus client libraries (Run, Scheduler, Logging, …) ship
no ``ServiceDescriptor``: their protos are compiled into message classes only. What they ship
is the code gapic-generator-python generated from that descriptor:

- the gRPC transport (``transports/grpc.py``) has one property per RPC that builds the stub for
  ``/package.Service/Method`` with the streaming kind of the proto (``unary_unary``,
  ``stream_stream``, …) and is annotated ``Callable[[Request], Response]``;
- the REST transport base (``transports/rest_base.py``), where the library has one, keeps each
  RPC's ``google.api.http`` rule (``_Base<Method>._get_http_options()``), including the rules of
  the Operations / Locations mixins as the API serves them.

:func:`gapic_api` reads both (calling each stub property on a stand-in that records the
stub instead of dialling anywhere) and rebuilds a real ``ServiceDescriptor`` in a private
descriptor pool, with the HTTP rules as the method options they are in the proto. Logging,
IAM Admin and Monitoring ship no REST transport: their methods carry no HTTP rule here.
"""

from __future__ import annotations

import functools
import importlib
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any, Literal

import grpc
import proto
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message as PbMessage

Kind = Literal["unary_unary", "unary_stream", "stream_unary", "stream_stream"]
# A handler: ``fn(request, context)``; it returns the response (or yields them, for a stream).
Handler = Callable[[Any, grpc.ServicerContext], Any]


@dataclass(frozen=True)
class MethodSpec:
    """One RPC of an API: its descriptor and the Python classes of its messages.

    ``request`` / ``response`` are the classes the client library uses: proto-plus classes for
    the GAPIC libraries, ``_pb2`` classes for IAM, Operations and ``Empty``.
    """

    descriptor: descriptor.MethodDescriptor
    request: type
    response: type

    @property
    def name(self) -> str:
        return str(self.descriptor.name)

    @property
    def kind(self) -> Kind:
        d = self.descriptor
        return _KINDS[(bool(d.client_streaming), bool(d.server_streaming))]

    @property
    def http_rules(self) -> tuple[http_pb2.HttpRule, ...]:
        """The method's ``google.api.http`` rule, then its additional bindings (none known: ())."""
        return http_rules(self.descriptor.GetOptions())


_KINDS: dict[tuple[bool, bool], Kind] = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


def http_rules(options: Any) -> tuple[http_pb2.HttpRule, ...]:
    """The ``google.api.http`` rule of method ``options`` and its additional bindings."""
    if not options.HasExtension(annotations_pb2.http):
        return ()
    rule = options.Extensions[annotations_pb2.http]
    head = http_pb2.HttpRule()
    head.CopyFrom(rule)
    del head.additional_bindings[:]
    return (head, *rule.additional_bindings)


@dataclass(frozen=True)
class Api:
    """A Google API service: its full name, descriptor and methods (in the proto's order).

    ``mixin_http`` holds the HTTP rules under which this API serves methods of *other* services
    (``google.longrunning.Operations.GetOperation`` → ``GET /v2/{name=projects/*/…/operations/*}``
    for Cloud Run), keyed by the mixed-in method's full name.
    """

    full_name: str
    descriptor: descriptor.ServiceDescriptor
    methods: Mapping[str, MethodSpec]
    mixin_http: Mapping[str, tuple[http_pb2.HttpRule, ...]] = field(default_factory=dict)

    def bind(self, handlers: Mapping[str, Handler], *, raw: bool = False) -> Bound:
        """This API served by ``handlers`` (method name → handler); methods left out answer
        UNIMPLEMENTED. ``raw=True`` hands handlers the raw protobuf request (``Message.pb()``)
        instead of the proto-plus one, for hot paths that work on raw messages."""
        unknown = sorted(set(handlers) - set(self.methods))
        if unknown:
            raise ValueError(f"{self.full_name} has no method {', '.join(unknown)}")
        return Bound(self, dict(handlers), raw)


@dataclass(frozen=True)
class Bound:
    """An :class:`Api` with the handlers that serve it (see :mod:`govctl.emulator.registry`)."""

    api: Api
    handlers: Mapping[str, Handler]
    raw: bool = False


# Reading the client libraries ------------------------------------------------------------------

# Services a GAPIC client adds to an API's own ("mixins"): served once by the emulator, each
# API only adding the HTTP paths under which it exposes them.
MIXINS = frozenset(
    {"google.longrunning.Operations", "google.cloud.location.Locations", "google.iam.v1.IAMPolicy"}
)


@functools.cache
def gapic_api(package: str) -> Api:
    """The API whose GAPIC client lives in ``package`` (e.g.
    ``google.cloud.run_v2.services.jobs``), read from its gRPC and REST transports."""
    grpc_module = importlib.import_module(f"{package}.transports.grpc")
    transport = _transport_class(grpc_module, "GrpcTransport")
    stubs = [(found, prop) for prop in vars(transport).values() if (found := _stub(prop))]
    services = {path.strip("/").rsplit("/", 1)[0] for (path, _), _ in stubs}
    own_names = services - MIXINS or services
    if len(own_names) != 1:
        raise LookupError(f"{package} serves {sorted(services)}: which one is its own?")
    own: list[tuple[str, str, Kind, type, type]] = []
    mixins: list[str] = []
    for (path, kind), prop in stubs:
        service, method = path.strip("/").rsplit("/", 1)
        if service not in own_names:
            mixins.append(f"{service}.{method}")
            continue
        request, response = _signature(prop)
        own.append((service, method, kind, request, response))
    if not own:
        raise LookupError(f"{package} has no gRPC methods")
    rules = _rest_rules(package)
    full_name = own[0][0]
    pool_service = _synthesize(full_name, own, rules)
    methods = {
        method: MethodSpec(pool_service.methods_by_name[method], request, response)
        for _, method, _, request, response in own
    }
    mixin_http = {m: rules[m.rsplit(".", 1)[1]] for m in mixins if m.rsplit(".", 1)[1] in rules}
    return Api(full_name, pool_service, methods, mixin_http)


@functools.cache
def pb2_api(service: descriptor.ServiceDescriptor) -> Api:
    """The API of a compiled ``_pb2`` service (its descriptor is the real one)."""
    methods = {
        m.name: MethodSpec(
            m,
            message_factory.GetMessageClass(m.input_type),
            message_factory.GetMessageClass(m.output_type),
        )
        for m in service.methods
    }
    return Api(service.full_name, service, methods)


def _transport_class(module: ModuleType, suffix: str) -> type:
    for name, value in vars(module).items():
        if (
            name.endswith(suffix)
            and isinstance(value, type)
            and value.__module__ == module.__name__
        ):
            return value
    raise LookupError(f"no *{suffix} class in {module.__name__}")


class _Recorder:
    """Stands in for a channel: records the stub a transport property asks for."""

    def __init__(self) -> None:
        self.stub: tuple[str, Kind] | None = None

    def _record(self, kind: Kind) -> Callable[..., None]:
        def make(method: str, *args: Any, **kwargs: Any) -> None:
            self.stub = (method, kind)

        return make

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name in _KINDS.values():
            return self._record(typing.cast(Kind, name))
        raise AttributeError(name)


def _stub(prop: object) -> tuple[str, Kind] | None:
    """(``/package.Service/Method``, kind) of a transport's stub property, else None."""
    if not isinstance(prop, property) or prop.fget is None:
        return None
    recorder = _Recorder()
    # Generated transports build stubs from ``self._logged_channel`` (older releases:
    # ``self.grpc_channel``) and cache them in ``self._stubs``.
    stand_in = SimpleNamespace(_stubs={}, _logged_channel=recorder, grpc_channel=recorder)
    try:
        prop.fget(stand_in)
    except Exception:  # a property that is not a stub (e.g. the operations client)
        return None
    return recorder.stub


def _signature(prop: property) -> tuple[type, type]:
    """(request class, response class) from a stub property's ``Callable[[Req], Resp]``."""
    hint = typing.get_type_hints(prop.fget)["return"]
    (request,), response = typing.get_args(hint)
    return request, response


def _rest_rules(package: str) -> dict[str, tuple[http_pb2.HttpRule, ...]]:
    """Method name → its HTTP rules, from the REST transport base (none without one)."""
    try:
        module = importlib.import_module(f"{package}.transports.rest_base")
    except ImportError:
        return {}
    base = _transport_class(module, "RestTransport")
    rules: dict[str, tuple[http_pb2.HttpRule, ...]] = {}
    for name, value in vars(base).items():
        options = getattr(value, "_get_http_options", None)
        m = re.fullmatch(r"_Base(\w+)", name)
        if m and options is not None:
            rules[m.group(1)] = tuple(_rule(o) for o in options())
    return rules


def _rule(option: Mapping[str, str]) -> http_pb2.HttpRule:
    rule = http_pb2.HttpRule(body=option.get("body", ""))
    setattr(rule, option["method"], option["uri"])
    return rule


# A private pool: the rebuilt services must never clash with a ``_pb2`` module that registers
# the real one in the default pool.
_POOL = descriptor_pool.DescriptorPool()


def _add_file(file: descriptor.FileDescriptor) -> None:
    try:
        _POOL.FindFileByName(file.name)
        return
    except KeyError:
        pass
    for dependency in file.dependencies:
        _add_file(dependency)
    proto_file = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto_file)
    _POOL.Add(proto_file)


def is_proto_plus(cls: type) -> bool:
    return issubclass(cls, proto.Message)


def pb_class(cls: type) -> type[PbMessage]:
    """The raw protobuf class of a proto-plus or ``_pb2`` message class."""
    given: Any = cls
    found = given.pb() if is_proto_plus(cls) else given
    if not (isinstance(found, type) and issubclass(found, PbMessage)):
        raise TypeError(f"{cls!r} is not a protobuf message class")
    return found


def _message_descriptor(cls: type) -> descriptor.Descriptor:
    return pb_class(cls).DESCRIPTOR


def _synthesize(
    full_name: str,
    methods: list[tuple[str, str, Kind, type, type]],
    rules: Mapping[str, tuple[http_pb2.HttpRule, ...]],
) -> descriptor.ServiceDescriptor:
    package, _, short = full_name.rpartition(".")
    file = descriptor_pb2.FileDescriptorProto(
        name=f"govctl/emulator/apis/{full_name}.proto", package=package, syntax="proto3"
    )
    service = file.service.add(name=short)
    files = {annotations_pb2.DESCRIPTOR.name: annotations_pb2.DESCRIPTOR}
    for _, name, kind, request, response in methods:
        types = (_message_descriptor(request), _message_descriptor(response))
        files.update({t.file.name: t.file for t in types})
        method = service.method.add(
            name=name,
            input_type="." + types[0].full_name,
            output_type="." + types[1].full_name,
            client_streaming=kind.startswith("stream_"),
            server_streaming=kind.endswith("_stream"),
        )
        found = rules.get(name, ())
        if found:
            http = method.options.Extensions[annotations_pb2.http]
            http.CopyFrom(found[0])
            http.additional_bindings.extend(found[1:])
    for dependency in files.values():
        _add_file(dependency)
        file.dependency.append(dependency.name)
    _POOL.Add(file)
    return _POOL.FindServiceByName(full_name)
