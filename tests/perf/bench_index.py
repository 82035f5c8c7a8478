"""What `govctl index sync` and `index status` cost at scale, on the loopback cloud.

    python -m tests.perf.bench_index [--digests 2000] [--changed 0.02]

Fills a bucket with ``--digests`` synthetic digests (small text objects with the job's
metadata) and the job's summary (written with the job's own ``ingestion.summary`` code), then
times, in one process, and counts the Cloud Storage requests govctl makes (a counting proxy in
front of fake-gcs-server) and the ImportDocuments calls the emulator answered, for:

1. the first sync (every digest imported),
2. a day with ``--changed`` of the digests rewritten (the summary updated as a run would),
3. a sync with nothing changed,
4. a sync after one repository left the feed,
5. ``index status``.

The figures depend on the machine (and its load: say so when quoting them); the request counts
do not. A listing is a page of 1,000 objects; at 20,000 digests a listing is 20 pages.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT = "bench-project"
BUCKET = "bench-digests"
EXECUTION = "ingest-bench"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Bucket:
    """The synthetic digests and the job's objects that describe them."""

    def __init__(self, count: int) -> None:
        from govctl.gcp import clients

        self.bucket = clients.storage_client(PROJECT).bucket(BUCKET)
        self.keys = [f"owner{i % 50:02}/repo-{i:05}" for i in range(count)]
        self.processed: dict[str, str] = {}
        self.feed = list(self.keys)

    def write(self, keys: list[str], when: datetime) -> None:
        for key in keys:
            at = _stamp(when)
            body = f"Repository: {key}\n\nword{hashlib.sha1(key.encode()).hexdigest()[:8]}\n"
            blob = self.bucket.blob(f"{key}.md")
            blob.metadata = {"url": f"https://github.com/{key}", "pushedAt": at, "processedAt": at}
            blob.upload_from_string(body * 20, content_type="text/markdown; charset=utf-8")
            self.processed[key] = at

    def publish_feed(self) -> None:
        entries = [{"owner": k.split("/")[0], "name": k.split("/")[1]} for k in self.feed]
        raw = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
        sha = hashlib.sha256(raw).hexdigest()
        self.bucket.blob(f"_runs/feeds/{sha}.json.gz").upload_from_string(gzip.compress(raw))
        ref = json.dumps({"sha256": sha})
        self.bucket.blob(f"_runs/{EXECUTION}/feed-ref.json").upload_from_string(ref)

    def summarise(self, started: datetime, finished: datetime) -> None:
        """The summary a one-task run would leave, with the index's current watermark."""
        from ingestion.summary import ShardFigures, TaskResult, updated

        blob = self.bucket.blob("_state/summary.json")
        current = json.loads(blob.download_as_bytes()) if blob.exists() else None
        shard = ShardFigures(len(self.processed), 0, 0, tuple(self.processed.values()))
        task = TaskResult(EXECUTION, 0, 1, _stamp(started), _stamp(finished), 0, None, None,
                          {}, shard)  # fmt: skip
        value = updated(current, task, None, now=_stamp(finished))
        blob.upload_from_string(json.dumps(value), content_type="application/json")


@contextmanager
def _quiet() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        yield sink


def _measure(label: str, argv: list[str], counter: Any) -> None:
    from govctl.cli.main import main
    from govctl.gcp import clients

    branch = (f"projects/{PROJECT}/locations/global/collections/default_collection/"
              "dataStores/bench/branches/0")  # fmt: skip

    def imports() -> int:
        ops = clients.documents().list_operations(request={"name": branch}).operations
        return sum(1 for op in ops if "import-documents" in op.name)

    before = imports()
    counter.clear()
    t = time.perf_counter()
    with _quiet() as said:
        code = main(argv)
    took = time.perf_counter() - t
    if code:
        print(said.getvalue(), file=sys.stderr)
    listings = len(counter.listings(BUCKET))
    print(f"{label:<34} {took:7.2f} s  exit {code}  {len(counter.requests):5} storage requests "
          f"({listings} listing pages)  {imports() - before} ImportDocuments")  # fmt: skip


def _old_status(counter: Any) -> None:
    """What `index status` did before the summary: list the bucket for digests newer than
    the last import (the listing it made is still its fallback without a summary)."""
    from govctl.gcp import index

    counter.clear()
    t = time.perf_counter()
    index.digests_newer_than(PROJECT, BUCKET, None)
    took = time.perf_counter() - t
    print(f"{'the old index status listing':<34} {took:7.2f} s  {len(counter.requests):13} storage "
          f"requests ({len(counter.listings(BUCKET))} listing pages)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digests", type=int, default=2000)
    parser.add_argument("--changed", type=float, default=0.02)
    args = parser.parse_args()
    from govctl.emulator.server import Emulator
    from govctl.services import index_sync
    from tests.support.storage_count import StorageCounter

    index_sync.POLL_S = 0.2
    # Here a "run" ends seconds before the next sync; in production hours apart. Without this
    # the sync after it would (rightly) distrust the summary and list the bucket.
    index_sync.OVERLAP = timedelta(0)
    with tempfile.TemporaryDirectory(prefix="govctl-bench-index-") as tmp:
        work = Path(tmp)
        os.chdir(work)
        with Emulator(state_dir=work / "state") as emu:
            os.environ.update(emu.env())
            os.environ.update({"GOVCTL_PROJECT": PROJECT, "GOVCTL_BUCKET_NAME": BUCKET,
                               "GOVCTL_INDEX_DATA_STORE": "bench",
                               "CLOUDSDK_CONFIG": str(work / "gcloud")})  # fmt: skip
            from govctl.gcp import clients

            clients.storage_client(PROJECT).create_bucket(BUCKET)
            data = Bucket(args.digests)
            t = time.perf_counter()
            day0 = datetime.now(UTC) - timedelta(hours=3)
            data.write(data.keys, day0)
            data.publish_feed()
            data.summarise(day0, day0 + timedelta(minutes=10))
            print(f"{args.digests} digests written in {time.perf_counter() - t:.1f} s "
                  "(machine shared with other work)")  # fmt: skip
            from govctl.cli.main import main as govctl

            with _quiet():
                govctl(["index", "create"])
            with StorageCounter(emu.storage_url) as counter:
                os.environ["STORAGE_EMULATOR_HOST"] = counter.url
                _measure("sync: first (every digest)", ["index", "sync"], counter)
                changed = data.keys[: max(1, math.ceil(args.digests * args.changed))]
                day1 = datetime.now(UTC)
                os.environ["STORAGE_EMULATOR_HOST"] = emu.storage_url
                data.write(changed, day1)
                data.summarise(day1, datetime.now(UTC))
                os.environ["STORAGE_EMULATOR_HOST"] = counter.url
                _measure(f"sync: {len(changed)} changed", ["index", "sync"], counter)
                _measure("sync: nothing changed", ["index", "sync"], counter)
                data.feed = data.keys[1:]
                os.environ["STORAGE_EMULATOR_HOST"] = emu.storage_url
                data.publish_feed()
                os.environ["STORAGE_EMULATOR_HOST"] = counter.url
                _measure("sync: one left the feed", ["index", "sync"], counter)
                _measure("index status", ["index", "status"], counter)
                _old_status(counter)
                pages = math.ceil(args.digests / 1000)
                print(f"(a listing of every digest: about {pages} pages of 1,000 objects, in "
                      "two name ranges around the job's `_` objects; the old `index status` "
                      "listed the whole bucket every time)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
