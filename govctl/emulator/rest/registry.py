"""The RPCs the emulator serves, as the REST gateway calls them, and their HTTP rules.

The gateway needs, per served method: its service and method name, the raw protobuf classes
of its request and response, how it streams, a callable taking a request message and a
context, and the ``google.api.http`` rules that bind it to URLs. All of it comes from the
emulator's RPC registry (:mod:`govctl.emulator.registry`, the very endpoints the gRPC port
serves, so REST and gRPC cannot disagree), read by :func:`from_registry`.

The rules are the registry's (the client libraries' REST transports), and where a client
library ships no REST transport (Logging, IAM Admin, Monitoring) those of
``govctl/emulator/data/http_rules.json``, generated from Google's protos and service
configurations by ``scripts/http_rules.py``; that file also names each API's host
(``run.googleapis.com``), by which the gateway routes as Google's front end does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from google.api import http_pb2
from google.protobuf import descriptor_pool, json_format, message, message_factory

from govctl.emulator.apis import pb_class
from govctl.emulator.registry import Endpoint, Registry
from govctl.emulator.rest.errors import RestError
from govctl.emulator.rpc import RpcError

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


def message_class(full_name: str) -> type[message.Message]:
    desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    cls: type[message.Message] = message_factory.GetMessageClass(desc)
    return cls


def _invoker(endpoint: Endpoint) -> Callable[[message.Message, Any], Any]:
    """``endpoint``'s handler taking and returning raw messages; RpcError → RestError."""

    def unary(request: message.Message, context: Any) -> message.Message:
        try:
            arg = endpoint.request_from_pb(request)
            if endpoint.kind == "stream_unary":
                arg = iter([arg])
            return endpoint.response_pb(endpoint.handler(arg, context))
        except RpcError as err:
            raise RestError(err.code, err.message) from None

    def streaming(request: message.Message, context: Any) -> Iterator[message.Message]:
        arg = endpoint.request_from_pb(request)
        try:
            source = endpoint.handler(
                iter([arg]) if endpoint.kind == "stream_stream" else arg, context
            )
            for item in source:
                yield endpoint.response_pb(item)
        except RpcError as err:
            raise RestError(err.code, err.message) from None

    return unary if endpoint.kind in ("unary_unary", "stream_unary") else streaming


def from_registry(served: Registry) -> list[Rpc]:
    """Every endpoint of the emulator's registry, as the gateway calls it."""
    out: list[Rpc] = []
    for endpoint in served.endpoints():
        rules = endpoint.http_rules or http_rules(endpoint.service, endpoint.name)
        out.append(
            Rpc(
                service=endpoint.service,
                method=endpoint.name,
                request=endpoint.request_pb_class(),
                response=pb_class(endpoint.response),
                kind=endpoint.kind,
                invoke=_invoker(endpoint),
                rules=tuple(rules),
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
