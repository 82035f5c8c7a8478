"""Routing a REST request to an RPC, calling it, and answering as Google's front end does.

One generic mapping: every served method's ``google.api.http`` rules become routes (method +
path template); a request is matched by method and path (the host is not needed: no two
served rules collide), transcoded (:mod:`.transcode`), handed to the very callable the gRPC
server calls, and its response or error written back as JSON. A path that matches the rule of
a method the emulator does not serve is UNIMPLEMENTED, as the gRPC port answers; a path no
rule knows is Google's 404 envelope. Views that are not transcodings of a proto — the Cloud
Run Admin API v1 that gcloud uses, Resource Manager v1 — plug in as :class:`NativeRoute`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import grpc
from google.api import http_pb2
from google.protobuf import json_format, message

from govctl.emulator.rest import registry, transcode
from govctl.emulator.rest.context import RestContext
from govctl.emulator.rest.errors import RestError, bad_request, not_found_path
from govctl.emulator.rest.templates import Template, compile_template

log = logging.getLogger("govctl.emulator.rest")
JSON_TYPE = "application/json; charset=UTF-8"
PROTO_TYPE = "application/x-protobuf"


@dataclass
class Request:
    method: str
    host: str
    path: str  # percent-encoded, without the query
    query: list[tuple[str, str]]
    body: bytes
    user_project: str | None = None  # the X-Goog-User-Project header (the quota project)
    # set by the server: called when the client goes away (streams stop on it)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def of(cls, method: str, host: str, target: str, body: bytes = b"") -> Request:
        path, _, qs = target.partition("?")
        return cls(method.upper(), host, path, parse_qsl(qs, keep_blank_values=True), body)

    def param(self, name: str, default: str = "") -> str:
        for key, value in self.query:
            if key == name:
                return value
        return default


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    stream: Iterator[bytes] | None = None  # chunks of a streamed body, after ``body``


@dataclass(frozen=True)
class Route:
    verb: str
    template: Template
    rpc: registry.Rpc | None  # None: a method of a served service the emulator lacks
    rule: http_pb2.HttpRule
    name: str  # "google.cloud.run.v2.Jobs.GetJob"

    @property
    def service(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class NativeRoute:
    """A hand-written REST method: ``handle(gateway, request, match)`` returns JSON data.
    ``api``: the API host it belongs to (``run.googleapis.com``), None for any."""

    verb: str
    pattern: re.Pattern[str]
    handle: Callable[[Gateway, Request, re.Match[str]], Any]
    api: str | None = None


# A regional host (us-central1-run.googleapis.com) and the suffix gcloud's endpoint overrides
# add (govctl.emulator.rest.gcloud: API.localhost:PORT).
_REGION_PREFIX = re.compile(r"^[a-z]+-[a-z]+[0-9]+-")


def api_of(host: str) -> str:
    """The API a request's host names (``run.googleapis.com``), or "" for a bare address."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = _REGION_PREFIX.sub("", name.lower()).removesuffix(".localhost")
    return name if name.endswith(".googleapis.com") else ""


def _verb(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return str(kind).upper(), str(getattr(rule, str(kind)))


def dumps(data: Any, pretty: bool) -> bytes:
    text = json.dumps(data, indent=2 if pretty else None, ensure_ascii=False)
    return (text + "\n").encode()


class Gateway:
    def __init__(self, rpcs: list[registry.Rpc], native: Sequence[NativeRoute] = ()) -> None:
        self.rpcs = {f"{r.service}.{r.method}": r for r in rpcs}
        self.native = list(native)
        # Google routes by host first: /v1/projects/P/locations/L/jobs/J is a Cloud Scheduler
        # job on cloudscheduler.googleapis.com and a Cloud Run job on run.googleapis.com. A
        # request to a bare address (curl to 127.0.0.1) is matched against every API.
        self.apis = registry.api_hosts()
        routes: list[Route] = []
        served_services = {r.service for r in rpcs}
        for rpc in rpcs:
            routes += self._routes(rpc.rules, rpc, f"{rpc.service}.{rpc.method}")
        # Methods Google declares for a served service but the emulator lacks: UNIMPLEMENTED.
        for service in sorted(served_services):
            for method in registry.declared_methods(service):
                name = f"{service}.{method}"
                if name not in self.rpcs:
                    routes += self._routes(registry.http_rules(service, method), None, name)
        # The most literal template first: /v1/projects/{p}/builds before /v1/{name=**}.
        self.routes = sorted(routes, key=lambda r: -r.template.literals)

    @staticmethod
    def _routes(
        rules: tuple[http_pb2.HttpRule, ...], rpc: registry.Rpc | None, name: str
    ) -> list[Route]:
        out = []
        for rule in rules:
            verb, path = _verb(rule)
            out.append(Route(verb, compile_template(path), rpc, rule, name))
        return out

    # dispatch ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        pretty = request.param("prettyPrint", "true").lower() != "false"
        try:
            alt = request.param("alt", request.param("$alt", "json"))
            if alt not in ("json", "proto"):
                raise bad_request(f"Invalid value for alt: {alt!r} (json or proto)", "alt")
            native = self._native(request)
            if native is not None:
                route, m = native
                return Reply(200, dumps(route.handle(self, request, m), pretty))
            return self._transcoded(request, alt, pretty)
        except RestError as err:
            return Reply(err.http_status, dumps(err.envelope(), pretty))
        except Exception as err:  # a servicer's bug: what gRPC answers (UNKNOWN), not a hang-up
            log.exception("REST %s %s failed", request.method, request.path)
            failure = RestError(grpc.StatusCode.UNKNOWN, f"Exception calling application: {err}")
            return Reply(failure.http_status, dumps(failure.envelope(), pretty))

    def _native(self, request: Request) -> tuple[NativeRoute, re.Match[str]] | None:
        api = api_of(request.host)
        for route in self.native:
            m = route.pattern.fullmatch(request.path)
            if m is None or route.verb != request.method:
                continue
            if not api or route.api is None or route.api == api:
                return route, m
        return None

    def _match(self, request: Request) -> tuple[Route, dict[str, str]]:
        services = self.apis.get(api_of(request.host))  # None: any API
        for route in self.routes:
            if route.verb != request.method:
                continue
            if services is not None and route.service not in services:
                continue
            values = route.template.match(request.path)
            if values is not None:
                return route, values
        raise not_found_path(request.method, request.path)

    def _transcoded(self, request: Request, alt: str, pretty: bool) -> Reply:
        route, values = self._match(request)
        if route.rpc is None:
            raise RestError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"Method {route.name} is not implemented by the emulator (see docs/emulator.md).",
            )
        rpc = route.rpc
        pb = transcode.build_request(rpc.request, route.rule, values, request.query, request.body)
        context = RestContext(values, request.user_project)
        request.on_close.append(context.end)
        if rpc.kind in ("unary_stream", "stream_stream"):
            return Reply(200, b"", stream=self._stream(rpc, route.rule, pb, context, pretty))
        try:
            response = rpc.invoke(pb, context)
        finally:
            context.end()
        if alt == "proto":
            return Reply(200, response.SerializeToString(), PROTO_TYPE)
        return Reply(200, dumps(transcode.response_json(route.rule, response), pretty))

    def _stream(
        self,
        rpc: registry.Rpc,
        rule: http_pb2.HttpRule,
        pb: message.Message,
        context: RestContext,
        pretty: bool,
    ) -> Iterator[bytes]:
        """A streamed response as Google streams over REST: one JSON array, each element
        sent as it comes; an error ends the array as its last element."""
        sep = b"["
        try:
            for item in rpc.invoke(pb, context):
                yield sep + dumps(transcode.response_json(rule, item), pretty).rstrip()
                sep = b",\n"
        except RestError as err:
            yield sep + dumps(err.envelope(), pretty).rstrip()
            sep = b",\n"
        finally:
            context.end()
        yield (b"[" if sep == b"[" else b"") + b"]\n"

    # for native routes ---------------------------------------------------------------------------
    def call(self, name: str, data: dict[str, Any] | message.Message) -> Any:
        """Call ``service.Method`` with a request given as proto3 JSON (or a message) and
        return its response message; errors are raised as :class:`RestError`."""
        rpc = self.rpcs.get(name)
        if rpc is None:
            raise RestError(grpc.StatusCode.UNIMPLEMENTED, f"Method {name} is not served.")
        if isinstance(data, message.Message):
            pb = data
        else:
            pb = rpc.request()
            problem = transcode.unknown_name(data, pb.DESCRIPTOR)
            if problem:
                raise bad_request(problem)
            try:
                json_format.ParseDict(transcode.upper_enums(data, pb.DESCRIPTOR), pb)
            except json_format.ParseError as err:
                raise bad_request(f"Invalid JSON payload received. {err}") from None
        context = RestContext()
        try:
            return rpc.invoke(pb, context)
        finally:
            context.end()
