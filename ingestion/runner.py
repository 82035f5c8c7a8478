"""One task of the job: open the sink, read the feed, plan, run the pipeline, write the report.

Exit status: 0 when the failure ratio is within ``--max-failure-ratio``; 1 when it is not, on a
fatal error (feed unreadable, sink unusable) or when stopped by SIGTERM/SIGINT.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ingestion import INGEST_VERSION
from ingestion.cpus import available_cpus
from ingestion.digest import DigestSettings
from ingestion.feed import Feed, FeedError, load_feed
from ingestion.logs import Logger, Progress
from ingestion.pipeline import Pipeline, pipeline_stats
from ingestion.plan import Plan, make_plan
from ingestion.report import RunReport, execution_id
from ingestion.settings import Options
from ingestion.shard import shard
from ingestion.sinks import Sink, SinkError, open_sink

PROGRESS_INTERVAL_S = 30.0
# Retry budget for the run report after SIGTERM (Cloud Run's notice is 10 s).
STOPPING_RETRY_S = 3.0


@contextmanager
def stop_on_signals(stop: threading.Event, report: RunReport, log: Logger) -> Iterator[None]:
    """SIGTERM (Cloud Run's 10 s notice) and SIGINT set ``stop``; the pipeline winds down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            report.stopped_by = name
            log.warning(f"{name} received: taking no new repository, writing the report")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(options: Options, *, environ: Mapping[str, str], logger: Logger | None = None) -> int:
    log = logger or Logger(base={"task_index": options.task_index})
    settings = DigestSettings(
        max_file_size=options.max_file_size, max_total_size=options.max_total_size
    )
    fingerprint = settings.fingerprint()
    report = RunReport(
        execution=execution_id(dict(environ)),
        task_index=options.task_index,
        task_count=options.tasks,
        settings={
            **options.as_dict(),
            "ingest_version": INGEST_VERSION,
            "fingerprint": fingerprint,
        },
    )
    stop = threading.Event()
    with stop_on_signals(stop, report, log):
        try:
            return _run(options, settings, fingerprint, report, log, stop)
        except Exception as exc:
            # A bug: one CRITICAL record (a bare traceback would be split into many entries).
            log.critical(
                f"internal error: {type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )
            return 1


def _run(
    options: Options,
    settings: DigestSettings,
    fingerprint: str,
    report: RunReport,
    log: Logger,
    stop: threading.Event,
) -> int:
    log.info(
        "ingestion starting",
        execution=report.execution,
        task_count=options.tasks,
        sink=options.sink,
        feed=options.feed,
        concurrency=options.concurrency,
        force=options.force or None,
        dry_run=options.dry_run or None,
        fingerprint=fingerprint,
    )
    try:
        sink = open_sink(options.sink)
        if not options.dry_run:
            sink.check()
    except SinkError as exc:
        log.critical(f"sink unusable: {exc}", sink=options.sink)
        return 1

    t = time.monotonic()
    try:
        feed = load_feed(
            options.feed,
            allow_hosts=options.allow_hosts,
            allow_local=options.allow_local,
            limit=options.limit,
        )
    except FeedError as exc:
        report.fatal = f"feed unreadable: {exc}"
        log.critical(report.fatal, feed=options.feed)
        return _finish(sink, report, options, log)
    _note_feed(feed, options, report, log)

    mine = shard(feed.repos, options.tasks, options.task_index)
    try:
        stored = sink.list_metadata()
    except SinkError as exc:
        report.fatal = f"cannot list the sink: {exc}"
        log.critical(report.fatal, sink=options.sink)
        return 1
    plan = make_plan(mine, stored, fingerprint, force=options.force)
    report.in_shard = len(mine)
    report.to_do = len(plan.to_do)
    report.unchanged = len(plan.unchanged)
    report.plan_seconds = time.monotonic() - t
    for repo in plan.unchanged:
        log.debug(f"unchanged {repo.key}", repo=repo.key, pushed_at=repo.pushed_at)

    if options.dry_run:
        _print_plan(plan, report, log)
        return 0

    log.info(
        f"plan: {len(plan.to_do)} to do, {len(plan.unchanged)} unchanged",
        to_do=len(plan.to_do),
        unchanged=len(plan.unchanged),
        in_shard=len(mine),
        why=plan.why_counts(),
    )
    if stop.is_set():
        return _finish(sink, report, options, log)

    workdir = Path(tempfile.mkdtemp(prefix=f"ingestion-task{options.task_index}-"))
    progress = Progress(
        log,
        lambda: (report.done, report.to_do, pipeline_stats(report)),
        interval=PROGRESS_INTERVAL_S,
    )
    try:
        progress.start()
        Pipeline(
            sink=sink,
            settings=settings,
            fingerprint=fingerprint,
            concurrency=options.concurrency,
            digest_workers=available_cpus(),
            repo_timeout=options.repo_timeout,
            force=options.force,
            workdir=workdir,
            report=report,
            logger=log,
            stop=stop,
        ).run(plan.to_do)
    finally:
        progress.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if report.to_do:
        progress.emit()
    return _finish(sink, report, options, log)


def _note_feed(feed: Feed, options: Options, report: RunReport, log: Logger) -> None:
    """Log and count rejected entries: the feed is the same for every task, so task 0 alone
    reports them (summing the tasks' reports then counts each once)."""
    report.feed_entries = len(feed.repos)
    if options.task_index == 0:
        report.duplicates = feed.duplicates
        report.rejected = Counter(r.reason for r in feed.rejected)
        for r in feed.rejected:
            log.warning(
                f"rejected feed entry {r.entry}: {r.reason}",
                entry=r.entry,
                reason=r.reason,
                detail=r.detail,
            )
    log.info(
        f"feed: {len(feed.repos)} valid, {len(feed.rejected)} rejected, "
        f"{feed.duplicates} duplicates",
        valid=len(feed.repos),
        rejected=len(feed.rejected),
        duplicates=feed.duplicates,
    )


def _print_plan(plan: Plan, report: RunReport, log: Logger) -> None:
    for job in plan.to_do:
        log.info(f"would ingest {job.repo.key} ({job.why})", repo=job.repo.key, why=job.why)
    rejected = dict(sorted(report.rejected.items()))
    log.info(
        f"dry run: {len(plan.to_do)} to do, {len(plan.unchanged)} unchanged, "
        f"{sum(rejected.values())} rejected; nothing cloned or written",
        to_do=len(plan.to_do),
        unchanged=len(plan.unchanged),
        why=plan.why_counts(),
        rejected=sum(rejected.values()),
        rejected_by_reason=rejected,
    )


def _finish(sink: Sink, report: RunReport, options: Options, log: Logger) -> int:
    if report.stopped_by:
        sink.hurry(STOPPING_RETRY_S)
    code = report.exit_code(options.max_failure_ratio)
    body = report.to_dict()
    if not options.dry_run:  # a dry run writes nothing, not even its report
        try:
            sink.put_report(report.execution, report.task_index, body)
        except SinkError as exc:
            log.error(f"cannot write the run report: {exc}", reason="report_failed")
            code = 1
    counts = body["counts"]
    summary = (
        f"finished: {counts['processed']} processed ({counts['rewritten']} rewritten, "
        f"{counts['metadata_refreshed']} metadata refreshed), {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed, {counts['rejected']} rejected"
    )
    if report.stopped_by:
        summary += f", {counts['interrupted']} abandoned ({report.stopped_by})"
    log.log(
        "INFO" if code == 0 else "ERROR",
        summary,
        exit_code=code,
        counts=counts,
        failure_ratio=body["failure_ratio"],
        duration_s=body["durations_s"]["total"],
    )
    return code
