"""A guard in front of fake-gcs-server: no object name may lead out of its directory.

fake-gcs-server's filesystem backend keeps object NAME of BUCKET at ``ROOT/BUCKET/NAME``,
joined as a path (since fsouza/fake-gcs-server#1017, 2022), so an upload, copy, rewrite or
compose to ``../../../x`` wrote outside the state directory, over any file the emulator's user
may write (``~/.bashrc``, a ``.pth`` file of the interpreter tasks run). Cloud Storage itself
takes such names (it refuses only ``.`` and ``..`` as whole names,
https://cloud.google.com/storage/docs/naming-objects); the emulator cannot store them.

The guard listens where clients connect (the storage port) and forwards every request to
fake-gcs-server on a private loopback port. A request naming a bucket or object with a ``..``
path segment — in its path, its query, the JSON of an upload, compose or copy (the first part
of a multipart upload), a form upload's fields or any request of a batch — gets 400 in Cloud
Storage's JSON error shape and never reaches fake-gcs-server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from govctl.emulator.lifecycle import Server

# Headers that belong to one connection, not to the request or response forwarded.
_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "content-length"}
)  # fmt: skip
_TIMEOUT = 120.0  # a large object through fake-gcs-server under load


def _escapes(name: str) -> bool:
    return ".." in name.split("/")


def _json_names(data: Any) -> Iterator[str]:
    """Every ``name`` in a JSON document (an object's, a compose source's, …)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "name" and isinstance(value, str):
                yield value
            else:
                yield from _json_names(value)
    elif isinstance(data, list):
        for item in data:
            yield from _json_names(item)


def _param(header: str, key: str) -> str:
    """A parameter of a header value: ``boundary`` of a Content-Type, ``filename`` of a
    Content-Disposition ("" when absent)."""
    for item in header.split(";")[1:]:
        name, _, value = item.strip().partition("=")
        if name.lower() == key:
            return value.strip().strip('"')
    return ""


def _headers(block: bytes) -> dict[str, str]:
    lines = block.decode("latin-1").split("\r\n")
    pairs = (line.partition(":") for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, _, value in pairs}


def _parts(body: bytes, content_type: str) -> Iterator[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body: (headers, payload)."""
    boundary = _param(content_type, "boundary")
    if not boundary:
        return
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            return  # the closing delimiter
        head, _, payload = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        yield _headers(head), payload.removesuffix(b"\r\n")


def _http_names(raw: bytes) -> Iterator[str]:
    """The names of one request of a batch (``application/http``: request line, headers)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, _, rest = head.partition(b"\r\n")
    words = request_line.decode("latin-1").split()
    if len(words) >= 2:
        yield from names(words[1], _headers(rest).get("content-type", ""), body)


def _body_names(body: bytes, content_type: str) -> Iterator[str]:
    """Where a body may name an object: an upload's or a compose's JSON (``name``), the first
    part of a multipart upload, the fields of a form upload (``key``), a batch's requests."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        with contextlib.suppress(ValueError):
            yield from _json_names(json.loads(body))
    elif kind == "multipart/related":
        for headers, payload in _parts(body, content_type):
            yield from _body_names(payload, headers.get("content-type", "application/json"))
            break  # the metadata; the rest is the object's own bytes
    elif kind == "multipart/form-data":
        for headers, payload in _parts(body, content_type):
            if not _param(headers.get("content-disposition", ""), "filename"):
                yield payload.decode("utf-8", "replace")
    elif kind == "multipart/mixed":
        for headers, payload in _parts(body, content_type):
            if headers.get("content-type", "").lower().startswith("application/http"):
                yield from _http_names(payload)


def names(target: str, content_type: str, body: bytes) -> Iterator[str]:
    """The names a request could make fake-gcs-server use as paths."""
    parts = urlsplit(target)
    yield from (unquote(segment) for segment in parts.path.split("/"))
    yield from (value for _, value in parse_qsl(parts.query, keep_blank_values=True))
    if body:
        yield from _body_names(body, content_type)


def refusal(target: str, content_type: str, body: bytes) -> str | None:
    try:
        bad = next((n for n in names(target, content_type, body) if _escapes(n)), None)
    except RecursionError:  # batches nested in batches, on purpose
        return "The emulator refuses a request nested this deep."
    if bad is None:
        return None
    return (
        f"The emulator refuses the name {bad!r}: a '..' path segment would lead fake-gcs-server "
        "out of its directory (Cloud Storage would accept it; see docs/emulator.md#cloud-storage)."
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GuardServer
    _backend: http.client.HTTPConnection | None = None  # this client's, kept alive

    def log_message(self, format: str, *args: Any) -> None:
        pass  # fake-gcs-server logs requests itself

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    def _reply(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status, reason)
        length = str(len(data))
        for key, value in headers:
            if key.lower() not in _HOP:
                self.send_header(key, value)
            elif key.lower() == "content-length" and self.command == "HEAD":
                length = value  # what a GET would send
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(self) -> None:
        body = self._body()
        why = refusal(self.path, self.headers.get("Content-Type", ""), body)
        hook = self.server.hook
        if why is None and hook is not None:
            why = hook.refuse(self.command, self.path, body)
        if why is not None:
            detail = {"domain": "global", "reason": "invalid", "message": why}
            data = json.dumps({"error": {"code": 400, "message": why, "errors": [detail]}}).encode()
            self._reply(400, "Bad Request", [("Content-Type", "application/json")], data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        try:
            status, reason, response_headers, data = self._exchange(body, headers)
        except (OSError, http.client.HTTPException) as err:
            why = f"The emulator's storage server did not answer: {err}"
            self._reply(502, "Bad Gateway", [("Content-Type", "text/plain")], why.encode())
            return
        if hook is not None:
            data = hook.rewrite(self.command, self.path, body, status, data)
        self._reply(status, reason, response_headers, data)

    def _exchange(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One request to fake-gcs-server over this client's own kept-alive connection; a
        connection the server closed meanwhile is opened again once."""
        for attempt in (1, 2):
            if self._backend is None:
                self._backend = http.client.HTTPConnection(*self.server.backend, timeout=_TIMEOUT)
            try:
                self._backend.request(self.command, self.path, body=body, headers=headers)
                resp = self._backend.getresponse()
                return resp.status, resp.reason, resp.getheaders(), resp.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self._backend.close()
                self._backend = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every response back ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._backend is not None:
                self._backend.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


class Hook(Protocol):
    """What the guard asks of what it serves besides fake-gcs-server (bucket lifecycle:
    :class:`govctl.emulator.storage_lifecycle.StorageLifecycleService`)."""

    def refuse(self, method: str, target: str, body: bytes) -> str | None: ...

    def rewrite(self, method: str, target: str, body: bytes, status: int, data: bytes) -> bytes: ...


class _GuardServer(ThreadingHTTPServer):
    daemon_threads = True
    backend: tuple[str, int]
    hook: Hook | None = None


class StorageGuard(Server):
    """Listens on ``host:port`` and forwards to fake-gcs-server at ``backend``; ``hook`` may
    refuse a request (400) and rewrite an answer."""

    def __init__(
        self, host: str, port: int, backend: tuple[str, int], hook: Hook | None = None
    ) -> None:
        self.host, self.port, self.backend, self.hook = host, port, backend, hook
        self._server: _GuardServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StorageGuard:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_class = type("_Server", (_GuardServer,), {"address_family": family})
        server = server_class((self.host, self.port), _Handler)
        server.backend = self.backend
        server.hook = self.hook
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="storage-guard",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
