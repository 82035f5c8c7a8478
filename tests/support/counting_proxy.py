"""A counting HTTP proxy in front of the loopback cloud's Cloud Storage (fake-gcs-server).

Point ``STORAGE_EMULATOR_HOST`` at :attr:`CountingProxy.url`: every request is forwarded
unchanged and recorded, so a test can say how many object listings a command made
(:meth:`CountingProxy.listings`), which is what grows with the bucket.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]

    @property
    def is_listing(self) -> bool:
        """An object listing (``GET /storage/v1/b/BUCKET/o``): a page of the bucket's objects."""
        parts = self.path.split("/")
        return self.method == "GET" and len(parts) == 6 and parts[1:3] == ["storage", "v1"] \
            and parts[3] == "b" and parts[5] == "o"  # fmt: skip

    @property
    def object_name(self) -> str | None:
        """The object a request names (``…/o/NAME``), or None."""
        _, sep, name = self.path.partition("/o/")
        return unquote(name) if sep else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        with self.server.lock:
            self.server.seen.append(Seen(self.command, parts.path, parse_qs(parts.query)))
        conn = http.client.HTTPConnection(*self.server.target, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    target: tuple[str, int]
    seen: list[Seen]
    lock: threading.Lock


class CountingProxy:
    """Forwards to ``target`` (``http://host:port``) and records every request."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._server.seen = []
        self._server.lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._server.lock:
            self._server.seen.clear()

    @property
    def seen(self) -> list[Seen]:
        with self._server.lock:
            return list(self._server.seen)

    def listings(self) -> list[Seen]:
        """The object listings (each page is one request) since the last :meth:`reset`."""
        return [s for s in self.seen if s.is_listing]

    def whole_bucket_listings(self) -> list[Seen]:
        """Object listings with no ``prefix``: the ones that page through every digest."""
        return [s for s in self.listings() if not s.query.get("prefix", [""])[0]]
