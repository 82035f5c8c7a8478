"""The feed an execution shards: fetched once, stored once per content, shared by its tasks.

Every task of an execution must shard the very same list, even when the feed is republished
while they start. The first task to get there fetches the feed and stores

* the snapshot, ``_runs/feeds/{sha256}.json.gz``: the entries (only the fields the job reads),
  as compact JSON, gzip-compressed; named by the SHA-256 of that JSON, so an unchanged feed is
  stored once, however many executions use it, and written create-only (a second write of the
  same content is refused, and nothing is lost);
* the execution's reference to it, ``_runs/{execution}/feed-ref.json``, create-only too: when
  two tasks race, both use the snapshot the winner named.

Every other task reads the reference and then the snapshot. If the snapshot has gone meanwhile
(a lifecycle rule expired it: its age counts from the first execution that stored it), the task
fetches the feed again and uses it when it is still the same content; otherwise it fails
rather than shard a different list than its siblings.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingestion.feed import FeedError
from ingestion.sinks import Sink
from ingestion.sinks.base import GZIP_CONTENT_TYPE, feed_ref_path, feed_snapshot_path


@dataclass(frozen=True)
class FeedSnapshot:
    entries: list[Any]
    sha256: str
    source: str  # fetched | snapshot

    @property
    def path(self) -> str:
        return feed_snapshot_path(self.sha256)

    def describe(self) -> dict[str, Any]:
        """What the run report says about the feed."""
        return {
            "sha256": self.sha256,
            "snapshot": self.path,
            "source": self.source,
            "entries": len(self.entries),
        }


def canonical(entries: list[Any]) -> bytes:
    return json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def of_entries(entries: list[Any], source: str = "fetched") -> FeedSnapshot:
    return FeedSnapshot(entries, hashlib.sha256(canonical(entries)).hexdigest(), source)


class FeedStore:
    """The feed snapshots of one execution in ``sink``."""

    def __init__(self, sink: Sink, execution: str) -> None:
        self.sink = sink
        self.ref_path = feed_ref_path(execution)

    def agreed(self, fetch: Callable[[], list[Any]]) -> FeedSnapshot | None:
        """The snapshot another task of this execution chose, or None when none has yet."""
        ref, _ = self.sink.read_json(self.ref_path)
        sha = ref.get("sha256") if isinstance(ref, dict) else None
        if not isinstance(sha, str):
            return None
        stored = self._read(sha)
        if stored is not None:
            return stored
        again = of_entries(fetch())
        if again.sha256 != sha:
            raise FeedError(
                f"this execution's feed snapshot {feed_snapshot_path(sha)} is gone and the feed "
                "has changed since the first task read it — start a new execution"
            )
        self.sink.create(again.path, gzip.compress(canonical(again.entries), mtime=0),
                         GZIP_CONTENT_TYPE)  # fmt: skip
        return again

    def publish(self, fetched: FeedSnapshot) -> FeedSnapshot:
        """Store ``fetched`` (unless that content is stored already) and make it this
        execution's feed; the snapshot of a task that got there first wins."""
        body = gzip.compress(canonical(fetched.entries), mtime=0)
        self.sink.create(fetched.path, body, GZIP_CONTENT_TYPE)  # False: stored already
        ref = {"sha256": fetched.sha256, "snapshot": fetched.path}
        if self.sink.write_json_if(self.ref_path, ref, ""):
            return fetched
        winner = self.agreed(lambda: fetched.entries)
        return winner if winner is not None else fetched

    def _read(self, sha: str) -> FeedSnapshot | None:
        data = self.sink.read_bytes(feed_snapshot_path(sha))
        if data is None:
            return None
        try:
            raw = gzip.decompress(data)
            entries = json.loads(raw)
        except (OSError, EOFError, ValueError):
            return None
        if not isinstance(entries, list) or hashlib.sha256(raw).hexdigest() != sha:
            return None
        return FeedSnapshot(entries, sha, "snapshot")
