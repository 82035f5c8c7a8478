"""A loopback HTTP proxy that forwards to fake-gcs-server and keeps every request it forwarded.

Where fake-gcs-server accepts a Cloud Storage JSON API call but does not keep its effect (it
drops a bucket's ``iamConfiguration``), a test points ``STORAGE_EMULATOR_HOST`` here and checks
the request govctl sent against Google's documentation of that call instead.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

# Not forwarded as they came: the proxy makes its own connection and sets its own length.
_HOP_BY_HOP = {"host", "connection", "content-length", "transfer-encoding", "accept-encoding"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    body: bytes


class Recorder:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._lock:
                    recorder.requests.append(Request(self.command, self.path, body))
                request = urllib.request.Request(
                    recorder.upstream + self.path,
                    data=body if body else None,
                    method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        status, headers, data = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as err:
                    status, headers, data = err.code, err.headers, err.read()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test reads .requests

        return Handler
