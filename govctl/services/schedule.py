"""What `govctl schedule` means: the scheduler job in words, its next fire times (DST-aware),
and the changes an operator makes to it (cron, zone, pause, resume, run now).

Cloud Scheduler runs on wall-clock time in the job's zone, and Google documents that a time
skipped or repeated by a DST change can make a job "run or not run unexpectedly"
(cloud.google.com/scheduler/docs/configuring/cron-job-schedules). So fire times in a gap or
an overlap are marked, and `set` warns about them; Etc/UTC avoids the problem.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from govctl import validate
from govctl.config import Config
from govctl.errors import CloudError, GovctlError, NotFound
from govctl.gcp import executions, scheduler
from govctl.gcp.scheduler import ScheduleSpec

GAP, OVERLAP = "gap", "overlap"
NOTES = {
    GAP: "in a DST gap (this wall-clock time does not exist): it may run late or not at all",
    OVERLAP: "in a DST overlap (this wall-clock time happens twice): it may run twice",
}


def describe(cron: str) -> str:
    """The cron in words, 24-hour clock: "At 02:00, only on Sunday"."""
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    return str(ExpressionDescriptor(cron, options).get_description())


@dataclass(frozen=True)
class FireTime:
    at: datetime  # aware, in the schedule's zone
    dst: str = ""  # "", GAP or OVERLAP

    @property
    def note(self) -> str:
        return NOTES.get(self.dst, "")


def _dst(wall: datetime, zone: ZoneInfo) -> str:
    """Whether a naive wall-clock time is skipped or repeated in ``zone``."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return GAP
    if first.utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset():
        return OVERLAP
    return ""


def fire_times(
    cron: str, time_zone: str, count: int, after: datetime | None = None
) -> list[FireTime]:
    """The next ``count`` times the cron fires, reckoned on the zone's wall clock."""
    from croniter import croniter

    zone = ZoneInfo(time_zone)
    start = (after or datetime.now(UTC)).astimezone(zone).replace(tzinfo=None)
    it = croniter(cron, start)
    found: list[FireTime] = []
    while len(found) < count:
        wall: datetime = it.get_next(datetime)
        kind = _dst(wall, zone)
        # A time in a gap is shown where zoneinfo puts it (the offset before the change).
        found.append(FireTime(wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone), kind))
    return found


def _transitions(
    zone: ZoneInfo, start: datetime, days: int
) -> list[tuple[datetime, timedelta, timedelta]]:
    """UTC instants within ``days`` at which ``zone``'s offset changes: (instant, before, after)."""
    found = []
    t = start.replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(days=days)
    offset = t.astimezone(zone).utcoffset()
    while t < end:
        nxt = t + timedelta(hours=1)
        new = nxt.astimezone(zone).utcoffset()
        if new != offset:
            m = t
            while m.astimezone(zone).utcoffset() == offset:  # to the minute within the hour
                m += timedelta(minutes=1)
            found.append((m, offset, new))
            offset = new
        t = nxt
    return found  # type: ignore[return-value]


def dst_anomalies(cron: str, time_zone: str, after: datetime | None = None,
                  days: int = 366) -> list[FireTime]:  # fmt: skip
    """Fire times within ``days`` that fall in a DST gap or overlap of the zone."""
    from croniter import croniter

    zone = ZoneInfo(time_zone)
    start = after or datetime.now(UTC)
    found = []
    for instant, before, after_ in _transitions(zone, start.astimezone(UTC), days):
        low, high = sorted([instant + before, instant + after_])
        kind = GAP if after_ > before else OVERLAP
        wall = low.replace(tzinfo=None)
        while wall < high.replace(tzinfo=None):
            if croniter.match(cron, wall):
                found.append(FireTime(wall.replace(tzinfo=zone, fold=0), kind))
            wall += timedelta(minutes=1)
    return found


def shortest_interval(cron: str, time_zone: str, after: datetime | None = None) -> timedelta:
    """The shortest gap between consecutive fire times over the next few weeks."""
    # In UTC: aware datetimes of one zone subtract as wall-clock times, blind to DST.
    times = [f.at.astimezone(UTC) for f in fire_times(cron, time_zone, 60, after)]
    return min(b - a for a, b in itertools.pairwise(times))


@dataclass(frozen=True)
class Effective:
    """The schedule the job runs on: the deployed scheduler job's, else the settings'."""

    cron: str
    time_zone: str
    deployed: bool  # read from the scheduler job (False: there is none; the settings')
    settings_cron: str
    settings_time_zone: str

    @property
    def differs(self) -> bool:
        return (self.cron, self.time_zone) != (self.settings_cron, self.settings_time_zone)

    @property
    def note(self) -> str | None:
        """What to tell the operator when the live schedule is not the settings' one."""
        if not self.differs:
            return None
        return (
            f"the deployed schedule is '{self.cron}' ({self.time_zone}); the settings say "
            f"'{self.settings_cron}' ({self.settings_time_zone}), which the next `govctl "
            "deploy` puts back (`govctl doctor` shows the drift)"
        )


def effective(cfg: Config) -> Effective:
    """What commands that reason about the schedule use: the live one (`schedule set` may
    have changed it since govctl.toml was written), the settings' before any deploy."""
    live = scheduler.get(cfg.schedule_path)
    want = cfg.schedule
    if live is None:
        return Effective(want.cron, want.time_zone, False, want.cron, want.time_zone)
    return Effective(live.cron, live.time_zone, True, want.cron, want.time_zone)


def recent_run_time(cfg: Config) -> timedelta | None:
    """The median duration of the job's recent successful executions (None: no history)."""
    try:
        recent = executions.list_for_job(cfg.job_path, 20)
    except NotFound:
        return None  # the scheduler outlived its job: nothing to compare with
    durations = [e.duration_s() for e in recent if e.status == "succeeded"]
    seconds = [d for d in durations if d]
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


# show ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    name: str
    spec: ScheduleSpec
    description: str
    next_times: list[FireTime]

    def to_dict(self, local_zone: Any) -> dict[str, Any]:
        s = self.spec
        return {
            "name": self.name,
            "cron": s.cron,
            "description": self.description,
            "time_zone": s.time_zone,
            "state": s.state,
            "next_runs": [
                {
                    "time": f.at.isoformat(),
                    "local_time": f.at.astimezone(local_zone).isoformat(),
                    "dst": f.dst or None,
                }
                for f in self.next_times
            ],
            "last_attempt": None
            if s.last_attempt_time is None
            else {
                "time": s.last_attempt_time.isoformat(),
                "status": s.status_name or None,
                "message": s.status_message or None,
            },
            "target_uri": s.uri,
            "http_method": s.http_method,
            "service_account": s.service_account or None,
            "auth": s.auth or None,
            "scope": s.scope or None,
        }


def show(cfg: Config, count: int) -> View:
    spec = scheduler.require(cfg.schedule_path)
    times = fire_times(spec.cron, spec.time_zone, count) if spec.state == "ENABLED" else []
    return View(cfg.schedule.name, spec, describe(spec.cron), times)


# set -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A new cron / zone for the scheduler job, and what to tell the operator about it."""

    current: ScheduleSpec
    cron: str
    time_zone: str
    next_times: list[FireTime]
    warnings: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return (self.cron, self.time_zone) != (self.current.cron, self.current.time_zone)


def propose(cfg: Config, cron: str, time_zone: str | None) -> Proposal:
    """``cron`` and ``time_zone`` are validated already."""
    current = scheduler.require(cfg.schedule_path)
    zone = time_zone or current.time_zone
    warnings: list[str] = []
    anomalies = dst_anomalies(cron, zone)
    if anomalies:
        first = anomalies[0]
        warnings.append(
            f"{first.at:%Y-%m-%d %H:%M} in {zone} is {NOTES[first.dst]} "
            f"({len(anomalies)} such time(s) in the next year); Etc/UTC has no DST"
        )
    run_time = recent_run_time(cfg)
    interval = shortest_interval(cron, zone)
    if run_time is not None and interval < run_time:
        warnings.append(
            f"runs may overlap: it fires every {validate.format_duration(interval)} at the "
            f"shortest, and recent runs took {validate.format_duration(run_time)} (median); "
            "Cloud Scheduler does not wait for the previous run"
        )
    if (cron, zone) != (cfg.schedule.cron, cfg.schedule.time_zone):
        warnings.append(
            f"the settings still say [schedule] cron = {cfg.schedule.cron!r}, time_zone = "
            f"{cfg.schedule.time_zone!r}: the next `govctl deploy` puts them back; set them in "
            "govctl.toml too"
        )
    return Proposal(current, cron, zone, fire_times(cron, zone, 3), tuple(warnings))


def apply_proposal(cfg: Config, p: Proposal) -> ScheduleSpec:
    new = ScheduleSpec(
        cron=p.cron,
        time_zone=p.time_zone,
        uri=p.current.uri,
        http_method=p.current.http_method or "POST",
        service_account=p.current.service_account,
        scope=p.current.scope,
        attempt_deadline=p.current.attempt_deadline,
    )
    return scheduler.update(
        cfg.schedule_path, new, p.current.user_update_time, paths=("schedule", "time_zone")
    )


# pause / resume / trigger ----------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    before: str
    after: ScheduleSpec

    @property
    def changed(self) -> bool:
        return self.before != self.after.state


def pause(cfg: Config) -> Switch:
    current = scheduler.require(cfg.schedule_path)
    if current.state == "PAUSED":
        return Switch(current.state, current)
    return Switch(current.state, scheduler.pause(cfg.schedule_path))


def resume(cfg: Config) -> Switch:
    current = scheduler.require(cfg.schedule_path)
    if current.state == "ENABLED":
        return Switch(current.state, current)
    return Switch(current.state, scheduler.resume(cfg.schedule_path))


@dataclass(frozen=True)
class Triggered:
    spec: ScheduleSpec
    execution: executions.Execution


def trigger(cfg: Config, wait: float = 30.0) -> Triggered:
    """Fire the scheduler job now; the execution of the Run job that it started."""
    before = scheduler.require(cfg.schedule_path)
    known = {e.name for e in executions.list_for_job(cfg.job_path, 20)}
    spec = scheduler.run(cfg.schedule_path)
    # Production answers RunJob before the attempt is made (the emulator after it): wait for
    # the new execution, or for this attempt's failure. An older attempt's status is not it.
    deadline = time.monotonic() + wait
    while True:
        new = [e for e in executions.list_for_job(cfg.job_path, 20) if e.name not in known]
        if new:
            return Triggered(spec, new[0])
        attempted = spec.last_attempt_time is not None and (
            before.last_attempt_time is None or spec.last_attempt_time > before.last_attempt_time
        )
        if attempted and spec.status_code not in (None, 0):
            raise CloudError(
                f"scheduler job {cfg.schedule.name} ran, but its call to the Cloud Run job "
                f"failed: {spec.status_name}: {spec.status_message}",
                fix=_attempt_fix(spec, cfg),
            )
        if time.monotonic() > deadline:
            raise GovctlError(
                f"scheduler job {cfg.schedule.name} ran, but no new execution of "
                f"{cfg.job.name} appeared within {wait:.0f} s",
                fix="look at its attempt with `govctl schedule show`",
            )
        time.sleep(1.0)
        spec = scheduler.require(cfg.schedule_path)


def _attempt_fix(spec: ScheduleSpec, cfg: Config) -> str:
    if spec.status_name == "PERMISSION_DENIED":
        return (
            f"{spec.service_account or 'its service account'} needs roles/run.invoker on the "
            "job: run `govctl deploy` (or `gcloud run jobs add-iam-policy-binding "
            f"{cfg.job.name} --region {cfg.region} --member serviceAccount:"
            f"{spec.service_account} --role roles/run.invoker`)"
        )
    if spec.status_name == "NOT_FOUND":
        return f"the job {cfg.job.name} does not exist: run `govctl deploy`"
    if spec.status_name == "UNAUTHENTICATED":
        return (
            "the scheduler needs an OAuth token of an existing service account: run `govctl deploy`"
        )
    return "see `govctl schedule show` and `govctl logs --scheduler`"
