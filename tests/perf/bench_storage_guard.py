"""What the storage guard costs: small uploads and downloads per second through the official
client, straight to fake-gcs-server and through the guard, side by side in one run.

    python -m tests.perf.bench_storage_guard [--objects 300] [--size 4096] [--threads 8]
                                             [--rounds 3]

Both servers use the filesystem backend in a temporary directory; the guarded one is what
``govctl emulator`` runs. Prints objects/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from govctl.emulator import storage as fake_gcs
from govctl.emulator.process import host_port


def _rate(url: str, objects: int, size: int, threads: int) -> tuple[float, float]:
    os.environ["STORAGE_EMULATOR_HOST"] = url
    client = storage.Client(project="bench", credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"bench-{time.monotonic_ns()}")
    payload = os.urandom(size)
    names = [f"owner{i % 50}/repo{i}.md" for i in range(objects)]
    with ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda n: bucket.blob(n).upload_from_string(payload), names))
        up = objects / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        list(pool.map(lambda n: bucket.blob(n).download_as_bytes(), names))
        down = objects / (time.perf_counter() - t0)
    return up, down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        guarded = fake_gcs.FakeGcs(data_dir=Path(tmp) / "guarded")
        with guarded:
            # The same binary and backend, reached directly on its private port.
            assert guarded._guard is not None
            direct = "http://" + host_port(*guarded._guard.backend)
            # Alternating rounds, so a load change on a shared machine hits both alike.
            rounds: dict[str, list[tuple[float, float]]] = {"direct": [], "guarded": []}
            for _ in range(args.rounds):
                for name, url in (("direct", direct), ("guarded", guarded.url)):
                    rounds[name].append(_rate(url, args.objects, args.size, args.threads))
    results = {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for name, rs in rounds.items()
    }
    for name, (up, down) in results.items():
        print(f"{name:8} uploads {up:7.0f}/s  downloads {down:7.0f}/s  (median of {args.rounds})")
    (du, dd), (gu, gd) = results["direct"], results["guarded"]
    print(f"guarded/direct: uploads {gu / du:.2f}x, downloads {gd / dd:.2f}x "
          f"({args.objects} objects of {args.size} B, {args.threads} threads)")  # fmt: skip


if __name__ == "__main__":
    main()
