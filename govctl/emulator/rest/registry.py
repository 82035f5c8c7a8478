"""The RPCs the emulator serves, as the REST gateway calls them, and their HTTP rules.

The gateway needs, per served method: its service and method name, the raw protobuf classes
of its request and response, how it streams, a callable taking a request message and a
context, and the ``google.api.http`` rules that bind it to URLs. The callables come from the
gRPC handlers the services register (:func:`from_grpc_handlers`, over today's
``govctl.emulator.rpc.service`` registration): calling them is calling the very servicer the
gRPC port calls, so REST and gRPC cannot disagree. The rules come from
``govctl/emulator/data/http_rules.json``, generated from Google's protos and service
configurations by ``scripts/http_rules.py`` (the installed client libraries register no
service descriptors to read them from at run time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import grpc
from google.api import http_pb2
from google.protobuf import descriptor_pool, json_format, message, message_factory

Kind = Literal["unary_unary", "unary_stream", "stream_stream", "stream_unary"]


@dataclass(frozen=True)
class Rpc:
    service: str  # "google.cloud.run.v2.Jobs"
    method: str  # "GetJob"
    request: type[message.Message]
    response: type[message.Message]
    kind: Kind
    # (request message, context) -> response message, or an iterator of them when streaming
    invoke: Callable[[message.Message, Any], Any]
    rules: tuple[http_pb2.HttpRule, ...]


@cache
def _rules_data() -> dict[str, Any]:
    text = resources.files("govctl.emulator").joinpath("data/http_rules.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def rules_source() -> str:
    return str(_rules_data()["source"])


def http_rules(service: str, method: str) -> tuple[http_pb2.HttpRule, ...]:
    """Every binding of ``service.method`` (its own rule, additional bindings, and for a
    mixin such as ``google.longrunning.Operations`` the rule of each API's configuration)."""
    data = _rules_data()
    raw: list[dict[str, Any]] = []
    own = data["services"].get(service, {}).get("methods", {}).get(method)
    if own is not None:
        raw.append(own["http"])
    raw += [
        {k: v for k, v in r.items() if k != "config"}
        for r in data["mixins"].get(service, {}).get(method, [])
    ]
    out: list[http_pb2.HttpRule] = []
    for item in raw:
        rule = json_format.ParseDict(item, http_pb2.HttpRule())
        extra = list(rule.additional_bindings)
        rule.ClearField("additional_bindings")
        out += [rule, *extra]
    return tuple(out)


def _type_names(service: str, method: str) -> tuple[str, str]:
    try:
        desc = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(method)
        return desc.input_type.full_name, desc.output_type.full_name
    except KeyError:
        own = _rules_data()["services"][service]["methods"][method]
        return own["input"], own["output"]


def message_class(full_name: str) -> type[message.Message]:
    desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    cls: type[message.Message] = message_factory.GetMessageClass(desc)
    return cls


def _kind(handler: grpc.RpcMethodHandler) -> Kind:
    if handler.request_streaming:
        return "stream_stream" if handler.response_streaming else "stream_unary"
    return "unary_stream" if handler.response_streaming else "unary_unary"


def _invoker(
    handler: grpc.RpcMethodHandler, response: type[message.Message], kind: Kind
) -> Callable[[message.Message, Any], Any]:
    deserialize = handler.request_deserializer
    serialize = handler.response_serializer
    fn = getattr(handler, kind)

    def as_pb(result: Any) -> message.Message:
        return response.FromString(serialize(result))

    def unary(request: message.Message, context: Any) -> message.Message:
        return as_pb(fn(deserialize(request.SerializeToString()), context))

    def streaming(request: message.Message, context: Any) -> Iterator[message.Message]:
        arg = deserialize(request.SerializeToString())
        source = fn(iter([arg]) if kind == "stream_stream" else arg, context)
        return (as_pb(item) for item in source)

    return unary if kind in ("unary_unary", "stream_unary") else streaming


def from_grpc_handlers(handlers: Iterable[grpc.GenericRpcHandler]) -> list[Rpc]:
    """Every method of the generic handlers, in registration order; as on the gRPC server,
    the first handler registered for a service name answers for it."""
    out: list[Rpc] = []
    seen: set[str] = set()
    for handler in handlers:
        service = handler.service_name()
        if service in seen:
            continue
        seen.add(service)
        methods: dict[str, grpc.RpcMethodHandler] = handler._method_handlers
        for path, method_handler in methods.items():
            name = path.rsplit("/", 1)[1]
            request_name, response_name = _type_names(service, name)
            response = message_class(response_name)
            kind = _kind(method_handler)
            out.append(
                Rpc(
                    service=service,
                    method=name,
                    request=message_class(request_name),
                    response=response,
                    kind=kind,
                    invoke=_invoker(method_handler, response, kind),
                    rules=http_rules(service, name),
                )
            )
    return out


def declared_methods(service: str) -> list[str]:
    """The methods Google's proto declares with an HTTP rule for ``service``."""
    return sorted(_rules_data()["services"].get(service, {}).get("methods", {}))


def api_hosts() -> dict[str, set[str]]:
    """API host (``run.googleapis.com``) -> the services it serves, from each API's service
    configuration (its ``name``); ``google.longrunning.Operations`` is every API's mixin."""
    out: dict[str, set[str]] = {}
    for service, data in _rules_data()["services"].items():
        out.setdefault(data["host"], {"google.longrunning.Operations"}).add(service)
    return out
