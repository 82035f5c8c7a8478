"""The gateway's HTTP/1.1 server: loopback, keep-alive, and what an HTTP proxy client sends.

gcloud with ``CLOUDSDK_PROXY_TYPE=http`` sends every request to the proxy in absolute form
(``GET http://us-central1-127.0.0.1:8087/apis/... HTTP/1.1``, RFC 9112 §3.2.2); the server
takes the host and path from it and answers itself. It is a proxy to nowhere: it never opens a
connection onward, refuses ``CONNECT`` (no tunnel to Google or anyone), and answers a path it
does not serve with Google's 404 envelope.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import grpc

from govctl.emulator.rest.errors import RestError
from govctl.emulator.rest.gateway import Gateway, Reply, Request, dumps

log = logging.getLogger("govctl.emulator.rest")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # One write per reply, and no Nagle delay waiting for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _target(self) -> tuple[str, str]:
        """(host, path?query) of the request line, origin or absolute form."""
        if "://" in self.path:
            parts = urlsplit(self.path)
            return parts.netloc, parts.path + (f"?{parts.query}" if parts.query else "")
        return self.headers.get("Host", ""), self.path

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        host, target = self._target()
        request = Request.of(self.command, host, target, self._body())
        reply = self.server.gateway.handle(request)
        if reply.stream is None:
            self._send(reply)
        else:
            self._send_stream(reply, request)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def do_CONNECT(self) -> None:
        # A tunnel would reach whatever host the client names: never.
        err = RestError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"The emulator's REST gateway does not tunnel ({self.path}); it answers plain "
            "http:// requests for the APIs it emulates only.",
        )
        self.close_connection = True
        self._send(Reply(405, dumps(err.envelope(), True)))

    def _headers(self, reply: Reply, chunked: bool) -> bytes:
        lines = [
            f"{self.protocol_version} {reply.status} {self.responses.get(reply.status, ('',))[0]}"
        ]
        lines.append(f"Content-Type: {reply.content_type}")
        lines.append(
            "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(reply.body)}"
        )
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, reply: Reply) -> None:
        self.log_request(reply.status)
        self.wfile.write(self._headers(reply, False) + reply.body)

    def _send_stream(self, reply: Reply, request: Request) -> None:
        """Chunked, each element flushed as it comes; stops when the client goes away."""
        assert reply.stream is not None
        self.log_request(reply.status)
        gone = threading.Event()
        watcher = threading.Thread(
            target=_watch_hangup, args=(self.connection, gone, request), daemon=True
        )
        watcher.start()
        self.wfile.write(self._headers(reply, True))
        try:
            for chunk in reply.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True
        finally:
            gone.set()
            for callback in request.on_close:
                callback()


def _watch_hangup(conn: socket.socket, done: threading.Event, request: Request) -> None:
    """End a stream's RPC when its client closes the connection (it sends nothing while it
    reads a stream, so readable-with-no-data is the hang-up)."""
    while not done.is_set():
        try:
            readable, _, _ = select.select([conn], [], [], 0.5)
            if readable:
                if not conn.recv(1, socket.MSG_PEEK):
                    break
                done.wait(0.5)  # the client sent more (a next request): not a hang-up
        except (OSError, ValueError):
            break
    for callback in request.on_close:
        callback()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # as the gRPC port: stop then start on the same port works

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.gateway = gateway
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conns_lock:
            (self._conns.add if open_ else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class RestServer:
    """The gateway on ``host:port`` (port 0 picks one), served from a background thread."""

    def __init__(self, host: str, port: int, gateway: Gateway) -> None:
        self.gateway = gateway
        self._server = _Server((host, port), gateway)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="rest-gateway",
            daemon=True,
        )

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()  # idle keep-alive connections end now
        self._thread.join(timeout=2)
