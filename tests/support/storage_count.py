"""A counting proxy in front of fake-gcs-server: which storage requests a command made.

Point ``STORAGE_EMULATOR_HOST`` at :attr:`StorageCounter.url` and every request is forwarded to
the emulator's storage and recorded as (method, path with query). :meth:`listings` gives the
object listings of a bucket (``GET /storage/v1/b/BUCKET/o`` without an object name), which is
what "no whole-bucket listing" is checked against.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class StorageCounter:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                with counter._lock:
                    counter.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(*counter._target, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for key, value in resp.getheaders():
                        if key.lower() not in _HOP:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StorageCounter:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def listings(self, bucket: str) -> list[dict[str, list[str]]]:
        """The query of each object listing of ``bucket`` made so far."""
        found = []
        with self._lock:
            requests = list(self.requests)
        for method, path in requests:
            parts = urlsplit(path)
            if method == "GET" and unquote(parts.path).rstrip("/") == f"/storage/v1/b/{bucket}/o":
                found.append(parse_qs(parts.query))
        return found

    def whole_bucket_listings(self, bucket: str) -> int:
        """Listings of ``bucket`` that are not bounded to a prefix (the digests are every
        object but the ``_``-prefixed ones: a listing of them is a whole-bucket listing)."""
        return sum(1 for q in self.listings(bucket) if not q.get("prefix"))
