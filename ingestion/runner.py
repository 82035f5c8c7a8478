"""One task of the job: open the sink, read the feed, plan, run the pipeline, write the report.

Every way out goes through :meth:`_Task.finish`: the closing ``finished: …`` line with the exit
code, and — unless the run was a dry run or the sink cannot be opened — the run report, the
failures state and the summary. A step that cannot go on records why in ``report.fatal`` and
returns nothing; the next step is then not taken.

Exit status: 0 when the failure ratio is within ``--max-failure-ratio``; 1 when it is not, on a
fatal error (feed unreadable or truncated, sink unusable) or when stopped by SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
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
from ingestion.clock import now_utc, utc_now
from ingestion.clone import HostToken
from ingestion.cpus import available_cpus
from ingestion.digest import DigestSettings
from ingestion.failures import backing_off, failed_again, merged
from ingestion.feed import Feed, FeedError, parse_entries, read_entries, slim
from ingestion.logs import Progress, get_logger
from ingestion.pipeline import Pipeline, pipeline_stats
from ingestion.plan import Plan, make_plan
from ingestion.report import RunReport, execution_id
from ingestion.settings import GITHUB_HOST, GITHUB_TOKEN_ENV, MIN_FEED_SHARE, Options
from ingestion.shard import shard
from ingestion.sinks import Sink, SinkError, Stored, open_sink
from ingestion.sinks.base import FAILURES_PATH, LAST_FEED_PATH
from ingestion.snapshot import FeedSnapshot, FeedStore, of_entries
from ingestion.summary import TaskResult, shard_figures, update_summary

log = get_logger(__name__)

PROGRESS_INTERVAL_S = 30.0
# Retry budget for the run report after SIGTERM (Cloud Run's notice is 10 s).
STOPPING_RETRY_S = 3.0


@contextmanager
def stop_on_signals(stop: threading.Event, report: RunReport) -> Iterator[None]:
    """SIGTERM (Cloud Run's 10 s notice) and SIGINT set ``stop``; the pipeline winds down.

    The handler only records: the main thread logs the stop when it sees it (a handler that
    logged could interrupt the main thread's own write of a line)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            report.stopped_by = signal.Signals(signum).name
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(options: Options, *, environ: Mapping[str, str]) -> int:
    """Run one task; logging is configured by the caller (:func:`ingestion.logs.configure`)."""
    task = _Task(options, environ)
    with stop_on_signals(task.stop, task.report):
        task.execute()
        return task.finish()


def github_auth(environ: Mapping[str, str]) -> HostToken | None:
    """GITHUB_TOKEN as a credential for github.com only; None when unset or blank."""
    token = environ.get(GITHUB_TOKEN_ENV, "").strip()
    return HostToken(GITHUB_HOST, token) if token else None


class _Task:
    def __init__(self, options: Options, environ: Mapping[str, str]) -> None:
        self.options = options
        self.settings = DigestSettings(
            max_file_size=options.max_file_size, max_total_size=options.max_total_size
        )
        self.fingerprint = self.settings.fingerprint()
        self.report = RunReport(
            execution=execution_id(dict(environ)),
            task_index=options.task_index,
            task_count=options.tasks,
            settings={
                **options.as_dict(),
                "ingest_version": INGEST_VERSION,
                "fingerprint": self.fingerprint,
            },
        )
        self.stop = threading.Event()
        self.auth = github_auth(environ)
        self.sink: Sink | None = None
        # Set once the sink is listed: what the summary's digest totals are computed from.
        self.listing: dict[str, Stored] | None = None
        self.shard_keys: list[str] = []
        self.feed_keys: set[str] = set()

    # -- the steps -------------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            self._steps()
        except Exception as exc:
            # A bug: one CRITICAL record (a bare traceback would be split into many entries).
            self._fatal(
                f"internal error: {type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )

    def _steps(self) -> None:
        self._log_start()
        sink = self._open_sink()
        feed = self._load_feed(sink) if sink is not None else None
        plan = self._plan(sink, feed) if sink is not None and feed is not None else None
        if sink is None or plan is None:
            return
        if self.options.dry_run:
            _print_plan(plan, self.report)
        elif not self.stop.is_set():
            self._ingest(sink, plan)

    def _log_start(self) -> None:
        o = self.options
        log.info(
            "ingestion starting",
            extra={
                "execution": self.report.execution,
                # Whether clones from github.com authenticate; never the token.
                "github_token": "set" if self.auth else "unset",
                "task_count": o.tasks,
                "sink": o.sink,
                "storage_endpoint": o.storage_endpoint if o.sink.startswith("gs://") else None,
                "feed": o.feed,
                "feed_deadline_s": o.feed_deadline,
                "concurrency": o.concurrency,
                "force": o.force or None,
                "dry_run": o.dry_run or None,
                "log_level": o.log_level,
                "fingerprint": self.fingerprint,
            },
        )

    def _open_sink(self) -> Sink | None:
        try:
            sink = open_sink(self.options.sink, storage_endpoint=self.options.storage_endpoint)
            if not self.options.dry_run:
                sink.check()
        except SinkError as exc:
            self._fatal(f"sink unusable: {exc}", sink=self.options.sink)
            return None
        self.sink = sink
        return sink

    def _load_feed(self, sink: Sink) -> Feed | None:
        """The execution's feed (see :mod:`ingestion.snapshot`), checked against the last run's
        size before anything is written."""
        o = self.options
        try:
            snap, last_valid = self._feed_snapshot(sink), _last_valid(sink)
        except FeedError as exc:
            self._fatal(f"feed unreadable: {exc}", feed=o.feed)
            return None
        except SinkError as exc:
            self._fatal(f"cannot read the job's state in the sink: {exc}", sink=o.sink)
            return None
        whole = parse_entries(snap.entries, allow_hosts=o.allow_hosts, allow_local=o.allow_local)
        valid = len(whole.repos)
        refused = None if o.allow_shrink else _shrinkage(valid, last_valid)
        if refused is not None:
            # Loud, and no digest, no state, no snapshot written: only the report says so.
            self.report.fatal = refused
            log.error(refused, extra={"valid": valid, "last_valid": last_valid, "feed": o.feed})
            return None
        if not o.dry_run:
            try:
                snap = self._keep_feed(sink, snap, valid, last_valid)
            except SinkError as exc:
                self._fatal(f"cannot store the feed snapshot: {exc}", sink=o.sink)
                return None
        self.report.feed = snap.describe()
        log.info(
            f"feed: {snap.source} ({valid} valid)",
            extra={"feed_source": snap.source, "snapshot": snap.path},
        )
        feed = parse_entries(
            snap.entries, allow_hosts=o.allow_hosts, allow_local=o.allow_local, limit=o.limit
        )
        _note_feed(feed, o, self.report)
        return feed

    def _feed_snapshot(self, sink: Sink) -> FeedSnapshot:
        o = self.options

        def fetch() -> list[Any]:
            return slim(read_entries(o.feed, deadline=o.feed_deadline))

        agreed = FeedStore(sink, self.report.execution).agreed(fetch)
        return agreed if agreed is not None else of_entries(fetch())

    def _keep_feed(
        self, sink: Sink, snap: FeedSnapshot, valid: int, last_valid: int | None
    ) -> FeedSnapshot:
        if snap.source == "fetched":
            snap = FeedStore(sink, self.report.execution).publish(snap)
        if self.options.task_index == 0 and last_valid != valid:
            record = {"valid": valid, "execution": self.report.execution, "at": utc_now()}
            sink.update_json(LAST_FEED_PATH, lambda _: record)
        return snap

    def _plan(self, sink: Sink, feed: Feed) -> Plan | None:
        t = time.monotonic()
        o, report = self.options, self.report
        mine = shard(feed.repos, o.tasks, o.task_index)
        try:
            listing = sink.list_digests()
            known, _ = sink.read_json(FAILURES_PATH)
        except SinkError as exc:
            self._fatal(f"cannot list the sink: {exc}", sink=o.sink)
            return None
        self.listing, self.shard_keys = listing, [repo.key for repo in mine]
        self.feed_keys = {repo.key for repo in feed.repos}
        stored = {key: item.metadata for key, item in listing.items()}
        plan = make_plan(mine, stored, self.fingerprint, force=o.force)
        _hold_back(plan, known if isinstance(known, dict) else {}, o, report)
        report.in_shard = len(mine)
        report.to_do = len(plan.to_do)
        report.unchanged = len(plan.unchanged)
        report.plan_seconds = time.monotonic() - t
        for repo in plan.unchanged:
            log.debug(
                "unchanged %s", repo.key, extra={"repo": repo.key, "pushed_at": repo.pushed_at}
            )
        report.succeeded.extend(repo.key for repo in plan.unchanged)
        return plan

    def _ingest(self, sink: Sink, plan: Plan) -> None:
        report = self.report
        log.info(
            f"plan: {len(plan.to_do)} to do, {len(plan.unchanged)} unchanged, "
            f"{len(report.backing_off)} backing off",
            extra={
                "to_do": len(plan.to_do),
                "unchanged": len(plan.unchanged),
                "backing_off": len(report.backing_off),
                "in_shard": report.in_shard,
                "why": plan.why_counts(),
            },
        )
        workdir = Path(tempfile.mkdtemp(prefix=f"ingestion-task{self.options.task_index}-"))
        progress = Progress(
            lambda: (report.done, report.to_do, pipeline_stats(report)),
            interval=PROGRESS_INTERVAL_S,
        )
        try:
            progress.start()
            self._pipeline(sink, workdir).run(plan.to_do)
        finally:
            progress.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        if report.to_do:
            progress.emit()

    def _pipeline(self, sink: Sink, workdir: Path) -> Pipeline:
        o = self.options
        return Pipeline(
            sink=sink,
            settings=self.settings,
            fingerprint=self.fingerprint,
            concurrency=o.concurrency,
            digest_workers=available_cpus(),
            repo_timeout=o.repo_timeout,
            force=o.force,
            workdir=workdir,
            report=self.report,
            stop=self.stop,
            auth=self.auth,
        )

    def _fatal(self, message: str, **fields: Any) -> None:
        """Record why the task cannot go on; the caller returns (nothing) and finish() ends it."""
        self.report.fatal = message
        log.critical(message, extra=fields)

    # -- the end -------------------------------------------------------------------------------

    def finish(self) -> int:
        """The one way out: the run report, the failures, the summary, the closing line."""
        report = self.report
        code = report.exit_code(self.options.max_failure_ratio)
        body = report.to_dict()
        if self.sink is not None and not self.options.dry_run:  # a dry run writes nothing
            if report.stopped_by:
                self.sink.hurry(STOPPING_RETRY_S)
            code = self._save(self.sink, body, code)
        counts = body["counts"]
        summary = (
            f"finished: {counts['processed']} processed ({counts['rewritten']} rewritten, "
            f"{counts['metadata_refreshed']} metadata refreshed), {counts['unchanged']} "
            f"unchanged, {counts['failed']} failed, {counts['rejected']} rejected"
        )
        if report.stopped_by:
            summary += f", {counts['interrupted']} abandoned ({report.stopped_by})"
        log.log(
            logging.INFO if code == 0 else logging.ERROR,
            summary,
            extra={
                "exit_code": code,
                "counts": counts,
                "failure_ratio": body["failure_ratio"],
                "duration_s": body["durations_s"]["total"],
            },
        )
        return code

    def _save(self, sink: Sink, body: dict[str, Any], code: int) -> int:
        report = self.report
        try:
            sink.put_report(report.execution, report.task_index, body)
        except SinkError as exc:
            log.error(f"cannot write the run report: {exc}", extra={"reason": "report_failed"})
            code = 1
        if report.failures or report.succeeded:
            self._save_failures(sink)
        self._save_summary(sink, body, code)
        return code

    def _save_failures(self, sink: Sink) -> None:
        report, now = self.report, now_utc()
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
        # With --limit the feed seen is not the whole feed: forget nobody for leaving it.
        feed_keys = None if self.options.limit else self.feed_keys
        cleared = list(report.succeeded)
        try:
            sink.update_json(
                FAILURES_PATH,
                lambda current: merged(
                    current, failed=failed, cleared=cleared, feed_keys=feed_keys
                ),
            )
        except SinkError as exc:
            log.error(
                f"cannot record the failures for the next run: {exc}",
                extra={"reason": "state_failed"},
            )

    def _save_summary(self, sink: Sink, body: dict[str, Any], code: int) -> None:
        report = self.report
        figures = None
        if self.listing is not None:
            figures = shard_figures(
                self.listing,
                self.shard_keys,
                report.written,
                feed_keys=self.feed_keys if report.task_index == 0 else None,
            )
        task = TaskResult(
            execution=report.execution,
            task_index=report.task_index,
            task_count=report.task_count,
            started_at=body["started_at"],
            finished_at=body["finished_at"],
            exit_code=code,
            stopped_by=report.stopped_by or None,
            fatal=report.fatal or None,
            counts=body["counts"],
            shard=figures,
        )
        try:
            update_summary(sink, task)
        except SinkError as exc:
            log.error(f"cannot update the summary: {exc}", extra={"reason": "summary_failed"})


# -- helpers ---------------------------------------------------------------------------------


def _last_valid(sink: Sink) -> int | None:
    last, _ = sink.read_json(LAST_FEED_PATH)
    value = last.get("valid") if isinstance(last, dict) else None
    return value if isinstance(value, int) else None


def _shrinkage(valid: int, last_valid: int | None) -> str | None:
    """Why a feed of ``valid`` entries looks empty or truncated, or None when it does not."""
    if valid == 0:
        what = "the feed has no valid entry" + (
            f" (the last run's had {last_valid})" if last_valid else ""
        )
    elif last_valid is not None and valid < MIN_FEED_SHARE * last_valid:
        what = (
            f"the feed has {valid} valid entries, under {MIN_FEED_SHARE:.0%} of the "
            f"{last_valid} of the last run"
        )
    else:
        return None
    return (
        f"{what}: refusing to run on a feed that looks empty or truncated (no digest or state "
        "written) — check the feed, or pass --allow-shrink (ALLOW_FEED_SHRINK=1) if expected"
    )


def _hold_back(plan: Plan, known: dict[str, Any], options: Options, report: RunReport) -> None:
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
            extra={
                "repo": job.repo.key,
                "reason": record.get("reason"),
                "first_failed": record["first_failed"],
                "failures": record.get("failures"),
                "retry_after": record.get("retry_after"),
                "persistent": True,
            },
        )
    plan.to_do = kept


def _note_feed(feed: Feed, options: Options, report: RunReport) -> None:
    """Log and count rejected entries: the feed is the same for every task, so task 0 alone
    reports them (summing the tasks' reports then counts each once)."""
    report.feed_entries = len(feed.repos)
    if options.task_index == 0:
        report.duplicates = feed.duplicates
        report.rejected = Counter(r.reason for r in feed.rejected)
        for r in feed.rejected:
            log.warning(
                f"rejected feed entry {r.entry}: {r.reason}",
                extra={"entry": r.entry, "reason": r.reason, "detail": r.detail},
            )
    log.info(
        f"feed: {len(feed.repos)} valid, {len(feed.rejected)} rejected, "
        f"{feed.duplicates} duplicates",
        extra={
            "valid": len(feed.repos),
            "rejected": len(feed.rejected),
            "duplicates": feed.duplicates,
        },
    )


def _print_plan(plan: Plan, report: RunReport) -> None:
    for job in plan.to_do:
        log.info(
            f"would ingest {job.repo.key} ({job.why})", extra={"repo": job.repo.key, "why": job.why}
        )
    rejected = dict(sorted(report.rejected.items()))
    log.info(
        f"dry run: {len(plan.to_do)} to do, {len(plan.unchanged)} unchanged, "
        f"{sum(rejected.values())} rejected; nothing cloned or written",
        extra={
            "to_do": len(plan.to_do),
            "unchanged": len(plan.unchanged),
            "why": plan.why_counts(),
            "rejected": sum(rejected.values()),
            "rejected_by_reason": rejected,
        },
    )
