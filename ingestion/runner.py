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
from typing import Any

from ingestion import INGEST_VERSION
from ingestion.clone import HostToken
from ingestion.cpus import available_cpus
from ingestion.digest import DigestSettings
from ingestion.failures import backing_off, failed_again, merged, now_utc
from ingestion.feed import Feed, FeedError, parse_entries, read_entries, slim
from ingestion.logs import Logger, Progress, utc_now
from ingestion.pipeline import Pipeline, pipeline_stats
from ingestion.plan import Plan, make_plan
from ingestion.report import RunReport, execution_id
from ingestion.settings import GITHUB_HOST, GITHUB_TOKEN_ENV, MIN_FEED_SHARE, Options
from ingestion.shard import shard
from ingestion.sinks import Sink, SinkError, open_sink
from ingestion.sinks.base import FAILURES_PATH, LAST_FEED_PATH, feed_snapshot_path

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
            return _run(options, settings, fingerprint, report, log, stop, github_auth(environ))
        except Exception as exc:
            # A bug: one CRITICAL record (a bare traceback would be split into many entries).
            log.critical(
                f"internal error: {type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )
            return 1


def github_auth(environ: Mapping[str, str]) -> HostToken | None:
    """GITHUB_TOKEN as a credential for github.com only; None when unset or blank."""
    token = environ.get(GITHUB_TOKEN_ENV, "").strip()
    return HostToken(GITHUB_HOST, token) if token else None


def _run(
    options: Options,
    settings: DigestSettings,
    fingerprint: str,
    report: RunReport,
    log: Logger,
    stop: threading.Event,
    auth: HostToken | None = None,
) -> int:
    log.info(
        "ingestion starting",
        execution=report.execution,
        # Whether clones from github.com authenticate; never the token.
        github_token="set" if auth else "unset",
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
        feed = _load_feed(sink, options, report, log)
    except FeedError as exc:
        report.fatal = f"feed unreadable: {exc}"
        log.critical(report.fatal, feed=options.feed)
        return _finish(sink, report, options, log)
    except _FeedShrank as exc:
        # Loud, and nothing written: not a digest, not the state, not even the report.
        log.error(str(exc), valid=exc.valid, last_valid=exc.last_valid, feed=options.feed)
        return 1
    except SinkError as exc:
        report.fatal = f"cannot read the job's state in the sink: {exc}"
        log.critical(report.fatal, sink=options.sink)
        return 1
    _note_feed(feed, options, report, log)

    mine = shard(feed.repos, options.tasks, options.task_index)
    try:
        stored = sink.list_metadata()
        known, _ = sink.read_json(FAILURES_PATH)
    except SinkError as exc:
        report.fatal = f"cannot list the sink: {exc}"
        log.critical(report.fatal, sink=options.sink)
        return 1
    plan = make_plan(mine, stored, fingerprint, force=options.force)
    _hold_back(plan, known if isinstance(known, dict) else {}, options, report, log)
    report.in_shard = len(mine)
    report.to_do = len(plan.to_do)
    report.unchanged = len(plan.unchanged)
    report.plan_seconds = time.monotonic() - t
    for repo in plan.unchanged:
        log.debug(f"unchanged {repo.key}", repo=repo.key, pushed_at=repo.pushed_at)
    report.succeeded.extend(repo.key for repo in plan.unchanged)
    feed_keys = None if options.limit else {repo.key for repo in feed.repos}

    if options.dry_run:
        _print_plan(plan, report, log)
        return 0

    log.info(
        f"plan: {len(plan.to_do)} to do, {len(plan.unchanged)} unchanged, "
        f"{len(report.backing_off)} backing off",
        to_do=len(plan.to_do),
        unchanged=len(plan.unchanged),
        backing_off=len(report.backing_off),
        in_shard=len(mine),
        why=plan.why_counts(),
    )
    if stop.is_set():
        return _finish(sink, report, options, log, feed_keys)

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
            auth=auth,
        ).run(plan.to_do)
    finally:
        progress.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if report.to_do:
        progress.emit()
    return _finish(sink, report, options, log, feed_keys)


class _FeedShrank(Exception):
    def __init__(self, valid: int, last_valid: int | None) -> None:
        self.valid = valid
        self.last_valid = last_valid
        if valid == 0:
            what = "the feed has no valid entry" + (
                f" (the last run's had {last_valid})" if last_valid else ""
            )
        else:
            what = (
                f"the feed has {valid} valid entries, under {MIN_FEED_SHARE:.0%} of the "
                f"{last_valid} of the last run"
            )
        super().__init__(
            f"{what}: refusing to run on a feed that looks empty or truncated (nothing "
            "written) — check the feed, or pass --allow-shrink (ALLOW_FEED_SHRINK=1) if expected"
        )


def _load_feed(sink: Sink, options: Options, report: RunReport, log: Logger) -> Feed:
    """The execution's feed: the snapshot of ``_runs/{execution}/feed.json`` when another task
    made it, else fetched, checked against the last run's size, and snapshotted (create-only:
    when two tasks race, both use the one that landed first). Every task of an execution thus
    shards the very same list, even when the feed is republished while they start."""
    snapshot = feed_snapshot_path(report.execution)
    entries, _ = sink.read_json(snapshot)
    source = "snapshot"
    if not isinstance(entries, list):
        entries = slim(read_entries(options.feed))
        source = "fetched"
    whole = parse_entries(entries, allow_hosts=options.allow_hosts, allow_local=options.allow_local)
    last, _ = sink.read_json(LAST_FEED_PATH)
    last_valid = last.get("valid") if isinstance(last, dict) else None
    last_valid = last_valid if isinstance(last_valid, int) else None
    valid = len(whole.repos)
    if not options.allow_shrink and (
        valid == 0 or (last_valid is not None and valid < MIN_FEED_SHARE * last_valid)
    ):
        raise _FeedShrank(valid, last_valid)
    if (
        source == "fetched"
        and not options.dry_run
        and not sink.write_json_if(snapshot, entries, "")
    ):
        taken, _ = sink.read_json(snapshot)
        if isinstance(taken, list):
            entries, source = taken, "snapshot"
    if not options.dry_run and options.task_index == 0 and last_valid != valid:
        sink.update_json(
            LAST_FEED_PATH,
            lambda _: {"valid": valid, "execution": report.execution, "at": utc_now()},
        )
    log.info(f"feed: {source} ({valid} valid)", feed_source=source, snapshot=snapshot)
    if options.limit is None and source == "fetched":
        return whole
    return parse_entries(
        entries,
        allow_hosts=options.allow_hosts,
        allow_local=options.allow_local,
        limit=options.limit,
    )


def _hold_back(
    plan: Plan, known: dict[str, Any], options: Options, report: RunReport, log: Logger
) -> None:
    """Take repositories that failed before and wait for their retry time out of the plan."""
    mine = {job.repo.key for job in plan.to_do} | {repo.key for repo in plan.unchanged}
    report.known_failures = {
        k: v for k, v in known.items() if k in mine and isinstance(v, dict) and "first_failed" in v
    }
    if options.force:
        return
    now = now_utc()
    kept = []
    for job in plan.to_do:
        record = report.known_failures.get(job.repo.key)
        if record is None or not backing_off(record, job.repo, now):
            kept.append(job)
            continue
        report.backing_off.append(job.repo.key)
        log.warning(
            f"persistent failure {job.repo.key}: {record.get('reason')} since "
            f"{record['first_failed']}; next attempt after {record.get('retry_after')}",
            repo=job.repo.key,
            reason=record.get("reason"),
            first_failed=record["first_failed"],
            failures=record.get("failures"),
            retry_after=record.get("retry_after"),
            persistent=True,
        )
    plan.to_do = kept


def _save_failures(sink: Sink, report: RunReport, feed_keys: set[str] | None, log: Logger) -> None:
    now = now_utc()
    failed = {
        f.repo: failed_again(
            report.known_failures.get(f.repo),
            reason=f.reason,
            detail=f.detail,
            stage=f.stage,
            pushed_at=f.pushed_at,
            failed_at=f.first_failed,
            now=now,
        )
        for f in report.failures
    }
    cleared = list(report.succeeded)

    def change(current: Any) -> dict[str, Any]:
        return merged(current, failed=failed, cleared=cleared, feed_keys=feed_keys)

    try:
        sink.update_json(FAILURES_PATH, change)
    except SinkError as exc:
        log.error(f"cannot record the failures for the next run: {exc}", reason="state_failed")


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


def _finish(
    sink: Sink,
    report: RunReport,
    options: Options,
    log: Logger,
    feed_keys: set[str] | None = None,
) -> int:
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
        if report.failures or report.succeeded:
            _save_failures(sink, report, feed_keys, log)
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
