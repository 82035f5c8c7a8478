"""What a REST round trip through the emulator's gateway adds to the same call over gRPC.

    python tests/perf/bench_rest.py [N]

Same emulator, same servicer, same request, interleaved so machine load hits both alike:
gRPC through the official client (insecure channel, as govctl's clients), REST as JSON over
one keep-alive HTTP/1.1 connection (what gcloud's httplib2 and curl keep do), and REST on a
new connection per call. Calls: Cloud Run v2 GetJob, Cloud Scheduler GetJob, Logging
ListLogEntries (a page of 50). Prints the median and 90th percentile of each, and the REST
overhead (median REST minus median gRPC). Target: under 5 ms.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from google.cloud import run_v2, scheduler_v1
from google.cloud.logging_v2.types import LogEntry, WriteLogEntriesRequest

from govctl.emulator.server import Emulator
from govctl.gcp import clients

PROJECT = "bench-project"
PARENT = f"projects/{PROJECT}/locations/europe-west2"


def _setup() -> None:
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            template=run_v2.TaskTemplate(containers=[run_v2.Container(image="busybox")])
        )
    )
    clients.jobs().create_job(parent=PARENT, job=job, job_id="bench").result(timeout=10)
    clients.scheduler().create_job(
        parent=PARENT,
        job=scheduler_v1.Job(
            name=f"{PARENT}/jobs/nightly",
            schedule="0 2 * * *",
            http_target=scheduler_v1.HttpTarget(uri="https://example.org/"),
        ),
    )
    entries = []
    for i in range(200):
        e = LogEntry(log_name=f"projects/{PROJECT}/logs/bench", text_payload=f"line {i}")
        e.resource.type = "global"
        entries.append(e)
    clients.logging().write_log_entries(request=WriteLogEntriesRequest(entries=entries))


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    import os

    with Emulator(storage=False) as emu:
        os.environ.update(emu.env())
        _setup()
        port = emu.rest_port
        kept = http.client.HTTPConnection("127.0.0.1", port)

        def rest(method: str, path: str, body: object = None, new: bool = False) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port) if new else kept
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            json.loads(response.read())
            assert response.status == 200
            if new:
                conn.close()

        listing = {"resourceNames": [f"projects/{PROJECT}"], "pageSize": 50}
        calls: dict[str, dict[str, Callable[[], object]]] = {
            "Run v2 GetJob": {
                "gRPC": lambda: clients.jobs().get_job(name=f"{PARENT}/jobs/bench"),
                "REST keep-alive": lambda: rest("GET", f"/v2/{PARENT}/jobs/bench"),
                "REST new connection": lambda: rest("GET", f"/v2/{PARENT}/jobs/bench", new=True),
            },
            "Scheduler GetJob": {
                "gRPC": lambda: clients.scheduler().get_job(name=f"{PARENT}/jobs/nightly"),
                "REST keep-alive": lambda: rest("GET", f"/v1/{PARENT}/jobs/nightly"),
                "REST new connection": lambda: rest("GET", f"/v1/{PARENT}/jobs/nightly", new=True),
            },
            "Logging ListLogEntries (50)": {
                "gRPC": lambda: next(
                    iter(
                        clients.logging()
                        .list_log_entries(
                            request={"resource_names": [f"projects/{PROJECT}"], "page_size": 50}
                        )
                        .pages
                    )
                ),
                "REST keep-alive": lambda: rest("POST", "/v2/entries:list", listing),
                "REST new connection": lambda: rest("POST", "/v2/entries:list", listing, new=True),
            },
        }
        print(f"{n} calls each, interleaved; ms (shared 2-core machine)")
        for call, ways in calls.items():
            samples: dict[str, list[float]] = {way: [] for way in ways}
            for fn in ways.values():  # warm up: channels, imports, connection
                for _ in range(20):
                    fn()
            for _ in range(n):
                for way, fn in ways.items():
                    samples[way].append(_timed(fn))
            grpc_median = statistics.median(samples["gRPC"])
            print(f"\n{call}")
            for way, values in samples.items():
                median = statistics.median(values)
                p90 = statistics.quantiles(values, n=10)[-1]
                extra = "" if way == "gRPC" else f"   REST adds {median - grpc_median:+.2f}"
                print(f"  {way:20} median {median:6.2f}   p90 {p90:6.2f}{extra}")
        kept.close()


if __name__ == "__main__":
    main()
