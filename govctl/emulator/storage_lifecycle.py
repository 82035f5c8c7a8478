"""Bucket lifecycle configuration for the loopback cloud's Cloud Storage: kept and applied.

fake-gcs-server accepts a bucket's ``lifecycle`` on insert and patch but neither keeps nor
applies it (a later GET has none). The storage guard (:mod:`govctl.emulator.storage_guard`),
which every request to fake-gcs-server passes, hands bucket requests to this service: it keeps
each bucket's ``lifecycle`` (in ``state.json``), puts it back into the bucket resources
fake-gcs-server answers with, and applies its Delete rules to the objects.

Google's rules (https://cloud.google.com/storage/docs/lifecycle, and the bucket resource's
``lifecycle.rule[]`` in the JSON API reference): a rule is an ``action`` (``Delete``,
``SetStorageClass``, ``AbortIncompleteMultipartUpload``) and a ``condition``; an object must
meet **every** condition of a rule; ``age`` is in days since the object's creation;
``matchesPrefix`` / ``matchesSuffix`` match any of the listed strings; changes to a
configuration "can take up to 24 hours to take effect" and actions run asynchronously.

Applied here: ``Delete`` rules whose conditions are among ``age``, ``createdBefore``,
``matchesPrefix``, ``matchesSuffix``, ``isLive`` (``true``: buckets here have no versioning)
— after every configuration change and once an hour of the emulator's clock. A rule with any
other condition, or another action, is kept and shown but never applied (never delete on a
guess). Deleted objects are gone at once (Google soft-deletes them for 7 days by default).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.ticker import Ticker

ACTIONS = frozenset({"Delete", "SetStorageClass", "AbortIncompleteMultipartUpload"})
APPLIED = frozenset({"age", "createdBefore", "matchesPrefix", "matchesSuffix", "isLive"})
EVERY = timedelta(hours=1)
TICK = 1.0
_BUCKETS = "/storage/v1/b"
_log = logging.getLogger("govctl.emulator.storage")


def _bucket_of(path: str) -> tuple[str | None, bool]:
    """(bucket name, whether the path is the bucket itself) of a JSON API path: ``/storage/v1/b``
    is (None, True), ``/storage/v1/b/NAME`` is (NAME, True), an object path (NAME, False)."""
    if path == _BUCKETS:
        return None, True
    if not path.startswith(_BUCKETS + "/"):
        return None, False
    rest = path[len(_BUCKETS) + 1 :]
    name, _, more = rest.partition("/")
    return unquote(name), not more


def refusal(lifecycle: Any) -> str | None:
    """Why Cloud Storage would refuse this ``lifecycle`` (400), or None."""
    if lifecycle is None:
        return None
    rules = lifecycle.get("rule", []) if isinstance(lifecycle, dict) else None
    if not isinstance(rules, list):
        return "Invalid argument: lifecycle.rule must be a list."
    for i, rule in enumerate(rules):
        action = (rule.get("action") or {}).get("type") if isinstance(rule, dict) else None
        if action not in ACTIONS:
            return f"Invalid argument: lifecycle.rule[{i}].action.type {action!r} is not one of " \
                   f"{sorted(ACTIONS)}."  # fmt: skip
        if not rule.get("condition"):
            return f"Invalid argument: lifecycle.rule[{i}] has no condition."
    return None


def _created(obj: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(obj["timeCreated"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def matches(condition: dict[str, Any], obj: dict[str, Any], now: datetime) -> bool:
    """Whether an object (its JSON resource) meets every condition of a rule."""
    name = str(obj.get("name", ""))
    created = _created(obj)
    checks = {
        "age": lambda v: created is not None and now - created >= timedelta(days=int(v)),
        "createdBefore": lambda v: created is not None and created.date() < date.fromisoformat(v),
        "matchesPrefix": lambda v: any(name.startswith(p) for p in v),
        "matchesSuffix": lambda v: any(name.endswith(s) for s in v),
        "isLive": lambda v: bool(v),
    }
    return all(checks[key](value) for key, value in condition.items())


def applicable(lifecycle: dict[str, Any]) -> list[dict[str, Any]]:
    """The conditions of the rules the emulator applies: Delete, known conditions only."""
    return [
        rule["condition"]
        for rule in lifecycle.get("rule", [])
        if rule.get("action", {}).get("type") == "Delete" and set(rule["condition"]) <= APPLIED
    ]


class StorageLifecycleService(Service):
    """Each bucket's ``lifecycle``, kept beside fake-gcs-server, and its Delete rules applied."""

    key = "storage"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._lifecycles: dict[str, dict[str, Any]] = {}
        self._ticker = Ticker("storage-lifecycle", TICK, self._tick)
        self._next = cloud.clock.now() + EVERY
        self._applying = threading.Lock()

    # the guard's hooks --------------------------------------------------------------------
    def refuse(self, method: str, target: str, body: bytes) -> str | None:
        """Why a bucket insert, patch or update would be refused for its lifecycle, or None."""
        bucket, whole = _bucket_of(urlsplit(target).path)
        if not whole or method not in ("POST", "PATCH", "PUT") or not body:
            return None
        if method == "POST" and bucket is not None:
            return None
        try:
            sent = json.loads(body)
        except ValueError:
            return None
        return refusal(sent.get("lifecycle")) if isinstance(sent, dict) else None

    def rewrite(self, method: str, target: str, body: bytes, status: int, data: bytes) -> bytes:
        """Keep what a successful bucket request set, and show the kept lifecycle in the bucket
        resource(s) of the answer."""
        bucket, whole = _bucket_of(urlsplit(target).path)
        if not whole or not 200 <= status < 300:
            return data
        if method == "DELETE" and bucket is not None:
            with self.lock:
                if self._lifecycles.pop(bucket, None) is not None:
                    self.changed()
            return data
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            return data
        if not isinstance(answer, dict):
            return data
        if method in ("POST", "PATCH", "PUT"):
            self._remember(method, answer.get("name") or bucket, body)
        if answer.get("kind") == "storage#buckets":
            for item in answer.get("items", []):
                self._show(item)
        elif answer.get("kind") == "storage#bucket":
            self._show(answer)
        else:
            return data
        return json.dumps(answer).encode()

    def _remember(self, method: str, bucket: str | None, body: bytes) -> None:
        try:
            sent = json.loads(body) if body else {}
        except ValueError:
            return
        if not bucket or not isinstance(sent, dict):
            return
        if "lifecycle" not in sent and method == "PATCH":
            return  # a patch that leaves the lifecycle alone
        lifecycle = sent.get("lifecycle") or {}
        with self.lock:
            if lifecycle.get("rule"):
                self._lifecycles[bucket] = lifecycle
            else:
                self._lifecycles.pop(bucket, None)
            self.changed()
        if lifecycle.get("rule"):
            threading.Thread(target=self.apply, args=(bucket,), daemon=True).start()

    def _show(self, resource: dict[str, Any]) -> None:
        with self.lock:
            kept = self._lifecycles.get(str(resource.get("name")))
        resource.pop("lifecycle", None)
        if kept:
            resource["lifecycle"] = kept

    # applying -------------------------------------------------------------------------------
    def run_lifecycle(self) -> list[str]:
        """Apply every bucket's Delete rules now; ``BUCKET/NAME`` of each object deleted."""
        with self.lock:
            buckets = list(self._lifecycles)
        return [f"{b}/{name}" for b in buckets for name in self.apply(b)]

    def apply(self, bucket: str) -> list[str]:
        with self.lock:
            conditions = applicable(self._lifecycles.get(bucket, {}))
        base = self.cloud.storage_url
        if not conditions or base is None:
            return []
        now = self.cloud.clock.now()
        deleted = []
        with self._applying:
            for obj in _objects(base, bucket):
                if any(matches(c, obj, now) for c in conditions):
                    with contextlib.suppress(urllib.error.HTTPError):  # gone meanwhile
                        _request(base, "DELETE", _object_path(bucket, obj["name"]))
                        deleted.append(str(obj["name"]))
        return deleted

    def _tick(self) -> None:
        now = self.cloud.clock.now()
        if now < self._next:
            return
        self._next = now + EVERY
        try:
            self.run_lifecycle()
        except (OSError, ValueError) as err:  # fake-gcs-server stopping: the next tick retries
            _log.warning("applying bucket lifecycle rules failed: %s", err)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def dump(self) -> Any:
        with self.lock:
            return {"lifecycles": dict(self._lifecycles)}

    def load(self, data: Any) -> None:
        self._lifecycles = dict((data or {}).get("lifecycles", {}))


def _object_path(bucket: str, name: str) -> str:
    return f"{_BUCKETS}/{quote(bucket, safe='')}/o/{quote(name, safe='')}"


def _request(base: str, method: str, path: str) -> bytes:
    req = urllib.request.Request(base + path, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return bytes(resp.read())


def _objects(base: str, bucket: str) -> Iterator[dict[str, Any]]:
    token = ""
    while True:
        query = {"fields": "items(name,timeCreated),nextPageToken", "maxResults": "1000"}
        if token:
            query["pageToken"] = token
        try:
            page = json.loads(_request(base, "GET", f"{_BUCKETS}/{quote(bucket, safe='')}/o?"
                                                     + urlencode(query)))  # fmt: skip
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return  # the bucket is gone
            raise
        yield from page.get("items", [])
        token = page.get("nextPageToken", "")
        if not token:
            return
