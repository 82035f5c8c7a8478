"""Removing a grant from a bucket's IAM policy, which fake-gcs-server cannot show (it has no
bucket IAM): the official storage client against a one-off loopback HTTP server that keeps a
policy the way Cloud Storage's JSON API does (``GET``/``PUT …/b/BUCKET/iam``, an etag that
must match, no binding without members). Not a mock: the client talks HTTP to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from govctl.errors import CloudError
from govctl.gcp import buckets

BUCKET = "digests"
SA = "serviceAccount:job@p.iam.gserviceaccount.com"
ADMIN, VIEWER = "roles/storage.objectAdmin", "roles/storage.objectViewer"


class _Iam(BaseHTTPRequestHandler):
    policy: dict[str, Any] = {}
    puts: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == f"/storage/v1/b/{BUCKET}/iam":
            self._send(200, self.policy)
        elif path == f"/storage/v1/b/{BUCKET}":
            self._send(200, {"kind": "storage#bucket", "name": BUCKET})
        else:
            self._send(404, {"error": {"code": 404, "message": "Not Found"}})

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("etag") != self.policy["etag"]:
            self._send(412, {"error": {"code": 412, "message": "Precondition Failed"}})
            return
        if any(not b.get("members") for b in body["bindings"]):
            self._send(400, {"error": {"code": 400, "message": "at least 1 member is required"}})
            return
        _Iam.puts.append(body)
        _Iam.policy = {**body, "etag": body["etag"] + "x"}
        self._send(200, _Iam.policy)


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Iam]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Iam)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.delenv("GOVCTL_EMULATOR_HOST", raising=False)
    _Iam.puts = []
    try:
        yield _Iam
    finally:
        server.shutdown()
        server.server_close()


def _policy(bindings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "storage#policy", "version": 1, "etag": "CAE=", "bindings": bindings}


def test_the_member_goes_and_the_others_stay(storage: type[_Iam]) -> None:
    storage.policy = _policy([{"role": ADMIN, "members": [SA, "user:ops@example.org"]}])
    assert buckets.remove_member(BUCKET, ADMIN, SA, "p") is True
    (sent,) = storage.puts
    assert sent["bindings"] == [{"role": ADMIN, "members": ["user:ops@example.org"]}]


def test_a_binding_left_empty_is_dropped_and_a_deleted_account_is_the_account(
    storage: type[_Iam],
) -> None:
    # IAM lists a grant of an account deleted since as deleted:serviceAccount:EMAIL?uid=ID
    # (googleapis google/iam/v1/policy.proto): it is removed too, and Cloud Storage refuses a
    # binding without members, so the binding goes.
    gone = "deleted:serviceAccount:job@p.iam.gserviceaccount.com?uid=123456789012345678901"
    storage.policy = _policy(
        [{"role": VIEWER, "members": [gone]}, {"role": ADMIN, "members": ["user:a@example.org"]}]
    )
    assert buckets.remove_member(BUCKET, VIEWER, SA, "p") is True
    (sent,) = storage.puts
    assert sent["bindings"] == [{"role": ADMIN, "members": ["user:a@example.org"]}]


def test_nothing_is_written_when_the_member_holds_no_such_grant(storage: type[_Iam]) -> None:
    storage.policy = _policy([{"role": ADMIN, "members": ["user:ops@example.org"]}])
    assert buckets.remove_member(BUCKET, ADMIN, SA, "p") is False
    assert storage.puts == []


def test_a_policy_changed_in_between_is_refused_not_overwritten(
    storage: type[_Iam], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.policy = _policy([{"role": ADMIN, "members": [SA]}])
    original = _Iam.do_GET

    def someone_else_writes_after_the_read(self: _Iam) -> None:
        original(self)
        if "/iam" in self.path:
            _Iam.policy = {**_Iam.policy, "etag": "changed"}

    monkeypatch.setattr(_Iam, "do_GET", someone_else_writes_after_the_read)
    with pytest.raises(CloudError, match="changed while govctl removed a grant"):
        buckets.remove_member(BUCKET, ADMIN, SA, "p")
    assert storage.puts == []
