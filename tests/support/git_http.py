"""Repositories served over git's smart HTTP protocol (as github.com serves them), recording
every request's path and ``Authorization`` header, so tests can see what git sent where."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None


@dataclass
class SmartHttpServer:
    """``git http-backend`` behind ``http.server`` on a loopback port; bare repositories
    under ``root`` are ``{url}/<name>.git`` (non-bare ones are served too: http-backend finds
    ``<name>/.git``)."""

    root: Path
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> SmartHttpServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._cgi()

            def do_POST(self) -> None:
                self._cgi()

            def _cgi(self) -> None:
                path, _, query = self.path.partition("?")
                server.requests.append(
                    Request(self.command, path, self.headers.get("Authorization"))
                )
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = _cgi_env(server.root, self.command, path, query, self.headers, len(body))
                out = subprocess.run(
                    ["git", "-c", "uploadpack.allowFilter=true", "http-backend"],
                    input=body,
                    env=env,
                    capture_output=True,
                    check=False,
                ).stdout
                status, headers, payload = _cgi_response(out)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _cgi_env(
    root: Path, method: str, path: str, query: str, headers: Message, length: int
) -> dict[str, str]:
    """The CGI environment git http-backend reads for one request."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(length),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    if headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = headers["Git-Protocol"]
    if headers.get("Content-Encoding") == "gzip":
        env["HTTP_CONTENT_ENCODING"] = "gzip"
    return env


def _cgi_response(out: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """CGI output (headers, a blank line, the body) as status, headers and body."""
    head, blank, payload = out.partition(b"\r\n\r\n")
    if not blank:
        head, _, payload = out.partition(b"\n\n")
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers.append((name, value.strip()))
    return status, headers, payload
