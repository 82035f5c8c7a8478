"""Clone, digest and upload with K repositories in flight.

K worker threads each carry one repository at a time through the three stages, so clones
(network, in the thread), digests (CPU, in a pool of worker processes: the digest is pure
Python and threads do not speed it up) and uploads (network, in the thread) of different
repositories overlap. At most K clones and K digests exist at once, whatever the feed size.
A digest never crosses the process boundary or sits in memory whole: the worker streams it to a
file in the work directory (at most ``--max-total-size`` bytes, all of it) and the upload
streams from that file.

Per-repository time limit without SIGALRM: the clone gets the limit as its own timeout, the
digest gets what is left as a pebble timeout, which kills the worker process that overran.

**Outcomes are recorded by the main thread only.** A worker thread hands each repository's
outcome (ingested, failed, abandoned) to the main thread through a queue. A SIGTERM that kills
a digest worker or a git process (``timeout -s TERM`` and Ctrl-C signal the whole process
group) makes a worker thread see a failure before the main thread has run the Python signal
handler; the main thread runs that handler before it executes anything else, so by the time it
reads the outcome the stop is known, and a failure during the stop is counted as
*interrupted*: never a failure of the repository, never remembered in ``failures.json``.

On stop (SIGTERM): no thread takes a new repository, running clones are cancelled through
the shared event, running digests are cancelled (their workers killed), and a digest that
is ready is not uploaded: nothing is written after the stop except the run report and the
job's state, and every object write is a whole object (the sink writes atomically).
Repositories still uploading ``STOP_GRACE_S`` after the stop are counted as interrupted and no
longer waited for.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pebble

from ingestion.clock import utc_now
from ingestion.clone import Clone, CloneError, HostToken, clone
from ingestion.logs import get_logger
from ingestion.plan import Job
from ingestion.report import Failure, RunReport
from ingestion.sinks import Sink, SinkError

if TYPE_CHECKING:
    from ingestion.digest import DigestFile, DigestSettings

log = get_logger(__name__)

# Recycle digest workers now and then: a long run must not accumulate garbage.
WORKER_MAX_TASKS = 100
# This many uploads failing in a row means the sink is gone: stop rather than clone for nothing.
MAX_UPLOAD_FAILURES_IN_A_ROW = 5
# After SIGTERM Cloud Run kills the task 10 s later. Uploads under way (each one atomic) get
# this long to finish; one still retrying after that is abandoned, so the report gets written.
STOP_GRACE_S = 5.0
# How often the main thread looks at the stop event while waiting for outcomes.
POLL_S = 0.1


def _init_worker() -> None:
    from ingestion.digest import init_worker

    init_worker()


def _digest(path: str, settings: DigestSettings, label: str, out: str) -> DigestFile:
    from ingestion.digest import write_digest

    return write_digest(Path(path), settings, label=label, out=Path(out))


class DigestPool(Protocol):
    """What the pipeline uses of ``pebble.ProcessPool`` (whose methods are not annotated)."""

    def schedule(
        self, function: Callable[..., Any], args: tuple[Any, ...] = ..., timeout: float = ...
    ) -> Future[Any]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


def process_pool(workers: int) -> DigestPool:
    """Digest workers forked from a clean single-threaded server that preloaded the digest code.

    Plain fork would copy this multi-threaded process (locks held by other threads included);
    spawn would re-import the digest code for every worker, and pebble restarts a worker after
    each timeout.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingestion.warm", "ingestion.pipeline", "ingestion.cli"])
    pool = pebble.ProcessPool(
        max_workers=workers, max_tasks=WORKER_MAX_TASKS, initializer=_init_worker, context=ctx
    )
    return cast(DigestPool, pool)


# -- what a worker thread hands to the main thread ----------------------------------------------


@dataclass(frozen=True)
class Ingested:
    job: Job
    action: str  # rewritten | metadata_refreshed
    commit: str
    size: int
    files: int
    capped: bool
    processed_at: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    job: Job
    reason: str
    detail: str
    stage: str
    seconds: float


@dataclass(frozen=True)
class Abandoned:
    """Cut short by the stop (a cancelled clone or digest, a digest not uploaded)."""

    job: Job
    stage: str


Outcome = Ingested | Failed | Abandoned


@dataclass
class _Work:
    """One repository on its way: where its clone and digest file live, how long it took."""

    job: Job
    dest: Path
    digest_file: Path
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)

    def lap(self, stage: str, since: float) -> None:
        self.timings[f"{stage}_s"] = time.monotonic() - since

    def elapsed(self) -> float:
        return time.monotonic() - self.started


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
        self.stop = stop
        self._jobs: Iterator[tuple[int, Job]] = iter(())
        self._jobs_lock = threading.Lock()
        self._taken = 0  # repositories a worker thread has taken (under _jobs_lock)
        self._recorded = 0  # outcomes the main thread has recorded
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._inflight: set[Future[Any]] = set()
        self._inflight_lock = threading.Lock()
        self._upload_failures_in_a_row = 0
        self._pool: DigestPool | None = None

    # -- the main thread ------------------------------------------------------------------------

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
        try:
            self._collect(threads)
        finally:
            if self.stop.is_set():
                self._pool.stop()
            else:
                self._pool.close()
            self._pool.join(timeout=10)

    def _collect(self, threads: list[threading.Thread]) -> None:
        """Record outcomes until every thread is done, or the stop's grace time is over."""
        stopped_at: float | None = None
        while any(t.is_alive() for t in threads) or not self._outcomes.empty():
            self._drain(timeout=POLL_S)
            if not self.stop.is_set():
                continue
            if stopped_at is None:
                stopped_at = time.monotonic()
                self._stopping()
            elif time.monotonic() - stopped_at > STOP_GRACE_S:
                break
        self._drain(timeout=0)
        with self._jobs_lock:
            unfinished = self._taken - self._recorded
        for _ in range(unfinished):
            self.report.record_interrupted()
        if unfinished:
            log.warning(
                "%d repositories still in flight %.0fs after the stop: not waiting",
                unfinished,
                STOP_GRACE_S,
                extra={"abandoned": unfinished},
            )

    def _stopping(self) -> None:
        signal_name = self.report.stopped_by  # empty when the run stops itself (the sink failed)
        log.warning(
            "%s: taking no new repository, cancelling clones and digests",
            f"{signal_name} received" if signal_name else "stopping",
            extra={"stopped_by": signal_name or None},
        )
        with self._inflight_lock:
            futures = list(self._inflight)
        for future in futures:
            future.cancel()  # pebble terminates the worker running it

    def _drain(self, *, timeout: float) -> None:
        try:
            outcome = (
                self._outcomes.get(timeout=timeout) if timeout else self._outcomes.get_nowait()
            )
        except queue.Empty:
            return
        while True:
            self._record(outcome)
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                return

    def _record(self, outcome: Outcome) -> None:
        with self._jobs_lock:
            self._recorded += 1
        if isinstance(outcome, Ingested):
            self._record_ingested(outcome)
        elif isinstance(outcome, Failed) and not self.stop.is_set():
            self._record_failed(outcome)
        else:
            # Abandoned, or failed while stopping: the stop may be what made it fail (a
            # signal sent to the whole process group kills digest workers and git too).
            stage = outcome.stage
            self.report.record_interrupted()
            log.info(
                "abandoned %s (stopping)",
                outcome.job.repo.key,
                extra={"repo": outcome.job.repo.key, "stage": stage},
            )

    def _record_ingested(self, done: Ingested) -> None:
        self._upload_failures_in_a_row = 0
        repo = done.job.repo
        for stage, seconds in done.timings.items():
            self.report.add_stage(stage.removesuffix("_s"), seconds)
        self.report.record_written(
            rewritten=done.action == "rewritten",
            size=done.size,
            files=done.files,
            capped=done.capped,
            repo=repo.key,
            processed_at=done.processed_at,
        )
        log.info(
            "ingested %s",
            repo.key,
            extra={
                "repo": repo.key,
                "why": done.job.why,
                "action": done.action,
                "commit": done.commit or None,
                "files": done.files,
                "size": done.size,
                "capped": done.capped or None,
                "duration_s": round(done.seconds, 3),
                **{k: round(v, 3) for k, v in done.timings.items()},
            },
        )

    def _record_failed(self, failed: Failed) -> None:
        job = failed.job
        failure = self.report.record_failure(
            Failure(job.repo.key, failed.reason, failed.detail, failed.stage, job.repo.pushed_at)
        )
        # A repository failing again as it did before is known: a WARNING, not a new ERROR.
        if failure.persistent:
            text = (
                f"persistent failure {job.repo.key}: {failed.reason} since {failure.first_failed}"
            )
        else:
            text = f"failed {job.repo.key}: {failed.reason}"
        log.log(
            logging.WARNING if failure.persistent else logging.ERROR,
            "%s",
            text,
            extra={
                "repo": job.repo.key,
                "reason": failed.reason,
                "stage": failed.stage,
                "detail": failed.detail,
                "first_failed": failure.first_failed,
                "persistent": failure.persistent,
                "duration_s": round(failed.seconds, 3),
            },
        )
        if failed.reason == "upload_failed":
            self._upload_failed()
        else:
            self._upload_failures_in_a_row = 0

    def _upload_failed(self) -> None:
        self._upload_failures_in_a_row += 1
        in_a_row = self._upload_failures_in_a_row
        if in_a_row >= MAX_UPLOAD_FAILURES_IN_A_ROW and not self.stop.is_set():
            self.report.fatal = f"{in_a_row} uploads in a row failed: the sink looks unusable"
            log.critical("%s; stopping", self.report.fatal)
            self.stop.set()

    # -- the worker threads ---------------------------------------------------------------------

    def _next(self) -> tuple[int, Job] | None:
        if self.stop.is_set():
            return None
        with self._jobs_lock:
            item = next(self._jobs, None)
            self._taken += item is not None
            return item

    def _worker(self) -> None:
        while (item := self._next()) is not None:
            seq, job = item
            work = _Work(job, self.workdir / f"{seq:06d}", self.workdir / f"{seq:06d}.md")
            try:
                outcome = self._stages(work)
            except Exception as exc:  # a bug must cost one repository, not the run
                where = traceback.extract_tb(exc.__traceback__)[-1]
                detail = f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
                outcome = Failed(job, "internal_error", detail, "pipeline", work.elapsed())
            finally:
                shutil.rmtree(work.dest, ignore_errors=True)
                work.digest_file.unlink(missing_ok=True)
            self._outcomes.put(outcome)

    def _stages(self, work: _Work) -> Outcome:
        fetched = self._clone(work)
        if not isinstance(fetched, Clone):
            return fetched
        log.debug("cloned %s", work.job.repo.key, extra={"repo": work.job.repo.key})
        digest = self._digest_file(work, fetched)
        shutil.rmtree(work.dest, ignore_errors=True)  # the clone is not needed any more
        if not isinstance(digest, _DigestDone):
            return digest
        if self.stop.is_set():
            return Abandoned(work.job, "upload")
        return self._upload(work, digest.file)

    def _clone(self, work: _Work) -> Clone | Failed | Abandoned:
        t = time.monotonic()
        try:
            fetched = clone(
                work.job.repo.url,
                work.dest,
                max_file_size=self.settings.max_file_size,
                timeout=self.repo_timeout,
                cancel=self.stop,
                auth=self.auth,
            )
        except CloneError as exc:
            if exc.reason == "cancelled":
                return Abandoned(work.job, "clone")
            return Failed(work.job, exc.reason, str(exc), "clone", work.elapsed())
        work.lap("clone", t)
        return fetched

    def _digest_file(self, work: _Work, fetched: Clone) -> _DigestDone | Failed | Abandoned:
        t = time.monotonic()
        budget = work.started + self.repo_timeout - t
        if budget <= 0:
            detail = f"no time left for the digest ({self.repo_timeout}s)"
            return Failed(work.job, "timeout", detail, "digest", work.elapsed())
        assert self._pool is not None
        args = (str(fetched.path), self.settings, work.job.repo.key, str(work.digest_file))
        try:
            future = self._pool.schedule(_digest, args=args, timeout=budget)
        except RuntimeError as exc:  # the pool is stopped or broken (its workers died)
            return self._digest_failed(work, "digest_crashed", f"digest pool unusable: {exc}")
        with self._inflight_lock:
            self._inflight.add(future)
        try:
            if self.stop.is_set():
                future.cancel()
            digest: DigestFile = future.result()
        except CancelledError:
            return Abandoned(work.job, "digest")
        except Exception as exc:
            return self._digest_failed(work, *_digest_error(exc, self.repo_timeout))
        finally:
            with self._inflight_lock:
                self._inflight.discard(future)
        work.lap("digest", t)
        return _DigestDone(digest)

    def _digest_failed(self, work: _Work, reason: str, detail: str) -> Failed:
        return Failed(work.job, reason, detail, "digest", work.elapsed())

    def _upload(self, work: _Work, digest: DigestFile) -> Ingested | Failed:
        t = time.monotonic()
        repo = work.job.repo
        processed_at = utc_now()
        metadata = {
            "org": repo.owner,
            "repo": repo.name,
            "url": repo.url,
            "pushedAt": repo.pushed_at,
            "processedAt": processed_at,
            "commit": digest.commit,
            "size": str(digest.size),
            "sha256": digest.sha256,
            "ingest_version": self.fingerprint,
            **digest.metadata(),  # a capped digest says why and what it left out
        }
        try:
            if not self.force and work.job.stored.get("sha256") == digest.sha256:
                self.sink.put_metadata(repo.owner, repo.name, metadata)
                action = "metadata_refreshed"
            else:
                self.sink.put_digest(repo.owner, repo.name, digest.path, metadata)
                action = "rewritten"
        except SinkError as exc:
            return Failed(work.job, "upload_failed", str(exc), "upload", work.elapsed())
        work.lap("upload", t)
        return Ingested(
            work.job, action, digest.commit, digest.size, digest.files, digest.capped, processed_at,
            work.elapsed(), work.timings,
        )  # fmt: skip


@dataclass(frozen=True)
class _DigestDone:
    file: DigestFile


def _digest_error(exc: Exception, repo_timeout: float) -> tuple[str, str]:
    """(reason, detail) of a digest that raised ``exc`` in (or on the way to) its worker."""
    if isinstance(exc, TimeoutError):
        return "timeout", f"digest exceeded the {repo_timeout}s repository limit"
    if isinstance(exc, pebble.ProcessExpired):
        return "digest_crashed", f"worker died: {exc} (exit code {exc.exitcode})"
    return "digest_failed", f"{type(exc).__name__}: {exc}"


def pipeline_stats(report: RunReport) -> dict[str, Any]:
    """Fields of the progress line beyond done/total."""
    counts = report.counts()
    return {k: counts[k] for k in ("processed", "failed", "interrupted")}
