"""Clone, digest and upload with K repositories in flight.

K worker threads each carry one repository at a time through the three stages, so clones
(network, in the thread), digests (CPU, in a pool of worker processes: gitingest is pure
Python and threads do not speed it up) and uploads (network, in the thread) of different
repositories overlap. At most K checkouts and K digests exist at once, whatever the feed size.
A digest never crosses the process boundary or sits in memory whole: the worker streams it to a
file in the work directory (at most ``--max-total-size`` bytes, all of it) and the upload
streams from that file.

Per-repository time limit without SIGALRM: the clone gets the limit as its own timeout, the
digest gets what is left as a pebble timeout, which kills the worker process that overran.

On stop (SIGTERM): no thread takes a new repository, running clones are cancelled through
the shared event, running digests are cancelled (their workers killed), and a digest that
is ready is not uploaded: nothing is written after the stop except the run report, and
every object write is a whole object (the sink writes atomically).
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pebble

from ingestion.clone import CloneError, HostToken, clone
from ingestion.logs import Logger, utc_now
from ingestion.plan import Job
from ingestion.report import Failure, RunReport
from ingestion.sinks import Sink, SinkError

if TYPE_CHECKING:
    from ingestion.digest import DigestFile, DigestSettings

# Recycle digest workers now and then: a long run must not accumulate gitingest's garbage.
WORKER_MAX_TASKS = 100
# This many uploads failing in a row means the sink is gone: stop rather than clone for nothing.
MAX_UPLOAD_FAILURES_IN_A_ROW = 5
# After SIGTERM Cloud Run kills the task 10 s later. Uploads under way (each one atomic) get
# this long to finish; one still retrying after that is abandoned, so the report gets written.
STOP_GRACE_S = 5.0


def _init_worker() -> None:
    from ingestion.digest import init_worker

    init_worker()


def _digest(path: str, settings: DigestSettings, label: str, out: str) -> DigestFile:
    from ingestion.digest import write_digest

    return write_digest(Path(path), settings, label=label, out=Path(out))


def process_pool(workers: int) -> pebble.ProcessPool:
    """Digest workers forked from a clean single-threaded server that preloaded gitingest.

    Plain fork would copy this multi-threaded process (locks held by other threads included);
    spawn would re-import gitingest for every worker, and pebble restarts a worker after each
    timeout.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingestion.warm", "ingestion.pipeline", "ingestion.cli"])
    return pebble.ProcessPool(
        max_workers=workers, max_tasks=WORKER_MAX_TASKS, initializer=_init_worker, context=ctx
    )


@dataclass
class _Outcome:
    action: str  # rewritten | metadata_refreshed
    size: int


class _Stopped(Exception):
    """The run is stopping: this repository is abandoned, not failed."""


class Pipeline:
    def __init__(
        self,
        *,
        sink: Sink,
        settings: DigestSettings,
        fingerprint: str,
        concurrency: int,
        digest_workers: int,
        repo_timeout: float,
        force: bool,
        workdir: Path,
        report: RunReport,
        logger: Logger,
        stop: threading.Event,
        auth: HostToken | None = None,
    ) -> None:
        self.auth = auth
        self.sink = sink
        self.settings = settings
        self.fingerprint = fingerprint
        self.concurrency = concurrency
        self.digest_workers = max(1, min(digest_workers, concurrency))
        self.repo_timeout = repo_timeout
        self.force = force
        self.workdir = workdir
        self.report = report
        self.log = logger
        self.stop = stop
        self._jobs: Iterator[tuple[int, Job]] = iter(())
        self._jobs_lock = threading.Lock()
        self._inflight: set[pebble.ProcessFuture] = set()
        self._inflight_lock = threading.Lock()
        self._upload_failures_in_a_row = 0
        self._pool: pebble.ProcessPool | None = None
        # Repositories whose upload is under way; once the run gives up waiting for them they
        # are counted as interrupted, and an upload that lands later records nothing more.
        self._uploading = 0
        self._closed = False
        self._record_lock = threading.Lock()

    def run(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        self._jobs = iter(enumerate(jobs))
        self._pool = process_pool(self.digest_workers)
        threads = [
            threading.Thread(target=self._worker, name=f"repo-{i}", daemon=True)
            for i in range(min(self.concurrency, len(jobs)))
        ]
        for t in threads:
            t.start()
        stopped_at: float | None = None
        try:
            # Short joins keep the main thread responsive to signals.
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.1)
                if not self.stop.is_set():
                    continue
                if stopped_at is None:
                    stopped_at = time.monotonic()
                    self._cancel_digests()
                elif time.monotonic() - stopped_at > STOP_GRACE_S:
                    self._abandon_uploads()
                    break
        finally:
            if self.stop.is_set():
                self._pool.stop()
            else:
                self._pool.close()
            self._pool.join(timeout=10)

    def _abandon_uploads(self) -> None:
        """Count the repositories whose upload is still retrying as interrupted: the object
        either lands whole or not at all, and the next run redoes it if it did not. From now
        on nothing is recorded, so the report being built cannot count one twice."""
        with self._record_lock:
            self._closed = True
            busy = self._uploading
            for _ in range(busy):
                self.report.record_interrupted()
        self.log.warning(
            f"{busy} upload(s) still running {STOP_GRACE_S:.0f}s after the stop: not waiting",
            abandoned=busy,
        )

    def _cancel_digests(self) -> None:
        with self._inflight_lock:
            futures = list(self._inflight)
        for future in futures:
            future.cancel()  # pebble terminates the worker running it

    def _next(self) -> tuple[int, Job] | None:
        if self.stop.is_set():
            return None
        with self._jobs_lock:
            return next(self._jobs, None)

    def _worker(self) -> None:
        while (item := self._next()) is not None:
            seq, job = item
            try:
                self._one(seq, job)
            except Exception as exc:  # a bug must cost one repository, not the run
                where = traceback.extract_tb(exc.__traceback__)[-1]
                detail = f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
                self._fail(job, "internal_error", detail, "pipeline", 0.0)

    def _one(self, seq: int, job: Job) -> None:
        started = time.monotonic()
        dest = self.workdir / f"{seq:06d}"
        digest_file = self.workdir / f"{seq:06d}.md"
        try:
            self._stages(job, dest, digest_file, started)
        finally:
            digest_file.unlink(missing_ok=True)

    def _stages(self, job: Job, dest: Path, digest_file: Path, started: float) -> None:
        repo = job.repo
        deadline = started + self.repo_timeout
        stage = "clone"
        timings: dict[str, float] = {}
        try:
            try:
                checkout = clone(
                    repo.url,
                    dest,
                    max_file_size=self.settings.max_file_size,
                    timeout=self.repo_timeout,
                    cancel=self.stop,
                    auth=self.auth,
                )
            except CloneError as exc:
                if exc.reason == "cancelled" or self.stop.is_set():
                    raise _Stopped from exc
                self._fail(job, exc.reason, str(exc), stage, time.monotonic() - started)
                return
            timings["clone_s"] = self._lap("clone", started)

            stage = "digest"
            t = time.monotonic()
            digest = self._run_digest(checkout.path, repo.key, digest_file, deadline - t)
            timings["digest_s"] = self._lap("digest", t)
        except _Stopped:
            self.report.record_interrupted()
            self.log.info(f"abandoned {repo.key} (stopping)", repo=repo.key, stage=stage)
            return
        except _DigestFailed as exc:
            self._fail(job, exc.reason, exc.detail, stage, time.monotonic() - started)
            return
        finally:
            shutil.rmtree(dest, ignore_errors=True)

        if self.stop.is_set():
            self.report.record_interrupted()
            self.log.info(
                f"abandoned {repo.key} before upload (stopping)", repo=repo.key, stage="upload"
            )
            return
        t = time.monotonic()
        with self._record_lock:
            self._uploading += 1
        try:
            outcome = self._upload(job, digest)
        except SinkError as exc:
            if self._upload_done():
                self._upload_failed()
                self._fail(job, "upload_failed", str(exc), "upload", time.monotonic() - started)
            return
        except BaseException:
            self._upload_done()
            raise
        if not self._upload_done():
            return  # already counted as interrupted: the report may be written by now
        with self._inflight_lock:
            self._upload_failures_in_a_row = 0
        timings["upload_s"] = self._lap("upload", t)
        self.report.record_written(
            rewritten=outcome.action == "rewritten",
            size=outcome.size,
            files=digest.files,
            capped=digest.capped,
            repo=repo.key,
        )
        self.log.info(
            f"ingested {repo.key}",
            repo=repo.key,
            why=job.why,
            action=outcome.action,
            commit=digest.commit or None,
            files=digest.files,
            size=outcome.size,
            capped=digest.capped or None,
            duration_s=round(time.monotonic() - started, 3),
            **{k: round(v, 3) for k, v in timings.items()},
        )

    def _upload_done(self) -> bool:
        """An upload ended; False when the run has stopped waiting for it (counted already)."""
        with self._record_lock:
            self._uploading -= 1
            return not self._closed

    def _lap(self, stage: str, since: float) -> float:
        seconds = time.monotonic() - since
        self.report.add_stage(stage, seconds)
        return seconds

    def _run_digest(self, path: Path, label: str, out: Path, budget: float) -> DigestFile:
        if budget <= 0:
            raise _DigestFailed("timeout", f"no time left for the digest ({self.repo_timeout}s)")
        assert self._pool is not None
        future = self._pool.schedule(
            _digest, args=(str(path), self.settings, label, str(out)), timeout=budget
        )
        with self._inflight_lock:
            self._inflight.add(future)
        try:
            if self.stop.is_set():
                future.cancel()
            return future.result()
        except CancelledError:
            raise _Stopped from None
        except TimeoutError:
            raise _DigestFailed(
                "timeout", f"digest exceeded the {self.repo_timeout}s repository limit"
            ) from None
        except pebble.ProcessExpired as exc:
            raise _DigestFailed("digest_crashed", f"worker died: {exc}") from None
        except Exception as exc:
            raise _DigestFailed("digest_failed", f"{type(exc).__name__}: {exc}") from None
        finally:
            with self._inflight_lock:
                self._inflight.discard(future)

    def _upload(self, job: Job, digest: DigestFile) -> _Outcome:
        repo = job.repo
        metadata = {
            "org": repo.owner,
            "repo": repo.name,
            "url": repo.url,
            "pushedAt": repo.pushed_at,
            "processedAt": utc_now(),
            "commit": digest.commit,
            "size": str(digest.size),
            "sha256": digest.sha256,
            "ingest_version": self.fingerprint,
            **digest.metadata(),  # a capped digest says why and what it left out
        }
        if not self.force and job.stored.get("sha256") == digest.sha256:
            self.sink.put_metadata(repo.owner, repo.name, metadata)
            return _Outcome("metadata_refreshed", digest.size)
        self.sink.put_digest(repo.owner, repo.name, digest.path, metadata)
        return _Outcome("rewritten", digest.size)

    def _upload_failed(self) -> None:
        with self._inflight_lock:
            self._upload_failures_in_a_row += 1
            in_a_row = self._upload_failures_in_a_row
        if in_a_row >= MAX_UPLOAD_FAILURES_IN_A_ROW and not self.stop.is_set():
            self.report.fatal = f"{in_a_row} uploads in a row failed: the sink looks unusable"
            self.log.critical(self.report.fatal + "; stopping")
            self.stop.set()

    def _fail(self, job: Job, reason: str, detail: str, stage: str, seconds: float) -> None:
        failure = self.report.record_failure(
            Failure(job.repo.key, reason, detail, stage, pushed_at=job.repo.pushed_at)
        )
        # A repository failing again as it did before is known: a WARNING, not a new ERROR.
        self.log.log(
            "WARNING" if failure.persistent else "ERROR",
            f"{'persistent failure' if failure.persistent else 'failed'} {job.repo.key}: "
            f"{reason}" + (f" since {failure.first_failed}" if failure.persistent else ""),
            repo=job.repo.key,
            reason=reason,
            stage=stage,
            detail=detail,
            first_failed=failure.first_failed,
            persistent=failure.persistent,
            duration_s=round(seconds, 3),
        )


class _DigestFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def pipeline_stats(report: RunReport) -> dict[str, Any]:
    """Fields of the progress line beyond done/total."""
    counts = report.counts()
    return {k: counts[k] for k in ("processed", "failed", "interrupted")}
