"""What `govctl alerts` means: an e-mail notification channel per address, and three alert
policies on the job, planned and applied like `deploy` (a second `set` writes nothing).

The policies (Cloud Monitoring):

- *execution failed*: Cloud Run's ``run.googleapis.com/job/completed_execution_count`` with
  ``metric.labels.result = "failed"`` on the job's ``cloud_run_job`` resource, above 0
  (metric and labels: cloud.google.com/monitoring/api/metrics_gcp_p_z, section "run").
- *no successful execution in DUR*: the same metric with ``result = "succeeded"`` absent for
  DUR (default: two intervals of the schedule, so one missed or failed run is not enough).
- *scheduler attempt failed*: log-based, on the scheduler job's ERROR entries
  (``resource.type="cloud_scheduler_job"``; a failed attempt is logged at ERROR).

govctl finds its own policies and channels by their user labels (``managed-by: govctl``, plus
``govctl-alert`` and ``job`` on policies), so display names may change without duplicates.
Flags not given keep what exists: ``alerts set`` alone re-applies the current addresses and
window, which is how a second run writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from govctl import validate
from govctl.config import Config
from govctl.errors import UsageError
from govctl.gcp import monitoring
from govctl.gcp.monitoring import ABSENCE, LOG_MATCH, THRESHOLD, Channel, Condition, Policy
from govctl.services.plan import (
    CREATE,
    DELETE,
    UNCHANGED,
    UPDATE,
    Applied,
    Change,
    Plan,
    ResourcePlan,
    deleted,
    shown,
)

MANAGED_BY = "govctl"
PREFIX = "govreposcrape"
COMPLETED_EXECUTIONS = "run.googleapis.com/job/completed_execution_count"
# Log-based policies must say how often they may notify; one e-mail per 5 minutes at most.
LOG_RATE_LIMIT = timedelta(minutes=5)
FAILED, STALE, SCHEDULER = "execution-failed", "stale", "scheduler-failed"
# Metric-absence windows: whole minutes from 2 minutes (alert.proto, MetricAbsence.duration) to
# 24.5 hours through the API (cloud.google.com/monitoring/alerts/types-of-conditions).
MIN_STALE_AFTER = timedelta(minutes=2)
MAX_STALE_AFTER = timedelta(hours=24, minutes=30)


def channel_name(email: str) -> str:
    return f"govctl: {email}"


def default_stale_after(cfg: Config) -> tuple[timedelta, str | None]:
    """Two intervals of the schedule (one missed run is not yet an alert, two are), capped at
    Cloud Monitoring's longest metric-absence window; the warning when capped."""
    from govctl.services.schedule import shortest_interval

    two = 2 * shortest_interval(cfg.schedule.cron, cfg.schedule.time_zone)
    if two <= MAX_STALE_AFTER:
        return two, None
    return MAX_STALE_AFTER, (
        f"two schedule intervals ({validate.format_duration(two)}) exceed Cloud Monitoring's "
        f"{validate.format_duration(MAX_STALE_AFTER)} limit for metric-absence conditions: "
        f"using {validate.format_duration(MAX_STALE_AFTER)} (choose with --stale-after)"
    )


# Desired state --------------------------------------------------------------------------


def _run_filter(cfg: Config, result: str) -> str:
    return (
        f'resource.type = "cloud_run_job" AND resource.labels.job_name = "{cfg.job.name}" '
        f'AND resource.labels.location = "{cfg.region}" '
        f'AND metric.type = "{COMPLETED_EXECUTIONS}" AND metric.labels.result = "{result}"'
    )


def _scheduler_filter(cfg: Config) -> str:
    return (
        f'resource.type="cloud_scheduler_job" AND resource.labels.job_id="{cfg.schedule.name}" '
        f'AND resource.labels.location="{cfg.region}" AND severity>=ERROR'
    )


def _doc(cfg: Config, what: str, steps: list[str]) -> str:
    lines = [what, "", "What to do:"]
    lines += [f"{i}. {step}" for i, step in enumerate(steps, 1)]
    lines += ["", f"(project {cfg.project}, region {cfg.region}; set by `govctl alerts set`)"]
    return "\n".join(lines)


def desired_policies(
    cfg: Config, stale_after: timedelta, channels: tuple[str, ...]
) -> dict[str, Policy]:
    """The three policies, by their ``govctl-alert`` label; ``channels`` are e-mail addresses."""
    job, sched = cfg.job.name, cfg.schedule.name
    window = validate.format_duration(stale_after)

    def labels(kind: str) -> dict[str, str]:
        return {"managed-by": MANAGED_BY, "govctl-alert": kind, "job": job}

    failed_doc = _doc(cfg, f"An execution of the Cloud Run job `{job}` failed.", [
        "`govctl logs --errors --latest` shows the failing tasks' error lines.",
        "`govctl executions show --latest` shows which tasks failed, and how.",
        "`govctl doctor` checks the deployment (permissions, image, schedule).",
        "Once fixed, `govctl run` runs the job again.",
    ])  # fmt: skip
    stale_doc = _doc(
        cfg,
        f"No execution of the Cloud Run job `{job}` succeeded in {window} "
        f"(schedule `{cfg.schedule.cron}`, {cfg.schedule.time_zone}).",
        [
            "`govctl schedule show` says whether the scheduler is enabled and how its last "
            "attempt went.",
            "`govctl logs --scheduler` shows the scheduler's attempts.",
            "`govctl executions list` shows the recent executions and their results.",
            "`govctl doctor` checks the deployment.",
        ],
    )
    scheduler_doc = _doc(
        cfg,
        f"Cloud Scheduler's job `{sched}` failed to start the Cloud Run job `{job}`.",
        [
            "`govctl logs --scheduler` shows the attempt and its status.",
            "`govctl doctor` checks what the attempt needs (e.g. the service account's "
            "roles/run.invoker on the job).",
            "`govctl schedule trigger` tries again now.",
        ],
    )
    failed = Condition(f"{job}: an execution failed", THRESHOLD, _run_filter(cfg, "failed"))
    stale = Condition(f"{job}: no successful execution in {window}", ABSENCE,
                      _run_filter(cfg, "succeeded"), stale_after)  # fmt: skip
    attempt = Condition(f"{sched}: an attempt failed", LOG_MATCH, _scheduler_filter(cfg))
    return {
        FAILED: Policy(
            f"{PREFIX}: execution failed", (failed,), channels, failed_doc, labels(FAILED)
        ),
        STALE: Policy(
            f"{PREFIX}: no successful execution in {window}",
            (stale,),
            channels,
            stale_doc,
            labels(STALE),
        ),
        SCHEDULER: Policy(
            f"{PREFIX}: scheduler attempt failed",
            (attempt,),
            channels,
            scheduler_doc,
            labels(SCHEDULER),
            rate_limit=LOG_RATE_LIMIT,
        ),
    }


# Plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertsPlan:
    plan: Plan
    channels: tuple[ResourcePlan, ...]
    policies: tuple[ResourcePlan, ...]
    stale_after: timedelta
    # for apply
    desired_channels: dict[str, Channel] = field(default_factory=dict, repr=False)  # by email
    desired_policies: dict[str, Policy] = field(default_factory=dict, repr=False)  # by kind
    current_channels: dict[str, Channel] = field(default_factory=dict, repr=False)  # by email
    current_policies: dict[str, Policy] = field(default_factory=dict, repr=False)  # by kind

    @property
    def project(self) -> str:
        return self.plan.project


def _gist(doc: object) -> object:
    """The first line of a policy's documentation (the plan shows that much)."""
    if not isinstance(doc, str):
        return doc
    first = doc.splitlines()[0] if doc else ""
    return first + (" …" if doc != first else "")


def _managed(labels: dict[str, str]) -> bool:
    return labels.get("managed-by") == MANAGED_BY


def _policy_fields(p: Policy, emails: dict[str, str]) -> dict[str, Any]:
    """A policy's managed fields as the plan compares and shows them (channels as addresses)."""
    cond = p.conditions[0] if len(p.conditions) == 1 else None
    return {
        "display_name": p.display_name,
        "enabled": p.enabled,
        "condition": cond.display_name if cond else [c.display_name for c in p.conditions],
        "filter": cond.filter if cond else None,
        "duration": cond.duration if cond else None,
        "channels": tuple(sorted(emails.get(c, c) for c in p.channels)),
        "documentation": p.documentation,
        "rate_limit": p.rate_limit,
    }


def _channel_plans(
    wanted: dict[str, Channel], mine: dict[str, Channel]
) -> tuple[ResourcePlan, ...]:
    plans = []
    for email, want in wanted.items():
        have = mine.get(email)
        changes = tuple(
            Change(f, getattr(have, f) if have else None, getattr(want, f))
            for f in (("display_name",) if have is None else ("display_name", "enabled"))
            if have is None or getattr(have, f) != getattr(want, f)
        )
        action = CREATE if have is None else UPDATE if changes else UNCHANGED
        plans.append(ResourcePlan("channel", email, action, changes))
    for email in sorted(set(mine) - set(wanted)):
        plans.append(deleted("channel", email, {"display_name": mine[email].display_name}))
    return tuple(plans)


def _policy_plans(
    desired: dict[str, Policy], current: dict[str, Policy], emails: dict[str, str]
) -> tuple[ResourcePlan, ...]:
    plans = []
    for kind, want in desired.items():
        have = current.get(kind)
        new = _policy_fields(want, {})
        old = _policy_fields(have, emails) if have else {}
        changes = tuple(
            Change(f, old.get(f), new[f]) for f in new if have is None or old.get(f) != new[f]
        )
        if have is None:  # a new policy: show what matters, not every field
            changes = tuple(c for c in changes if c.field in ("condition", "channels"))
        changes = tuple(
            Change(c.field, _gist(c.old), _gist(c.new)) if c.field == "documentation" else c
            for c in changes
        )
        action = CREATE if have is None else UPDATE if changes else UNCHANGED
        plans.append(ResourcePlan("policy", want.display_name, action, changes))
    return tuple(plans)


def plan(cfg: Config, emails: tuple[str, ...] | None, stale_after: timedelta | None) -> AlertsPlan:
    """The changes that make the alerts match; reads only.

    ``emails`` None keeps the addresses govctl's channels have; ``stale_after`` None keeps the
    current window (or the default: two schedule intervals, at most 24h30m).
    """
    project = cfg.require_project()
    channels = monitoring.list_channels(project)
    policies = monitoring.list_policies(project)
    by_name = {c.name: c.email for c in channels if c.email}
    mine = {c.email: c for c in channels if c.email and _managed(c.user_labels)}
    current = {
        p.user_labels["govctl-alert"]: p
        for p in policies
        if _managed(p.user_labels)
        and p.user_labels.get("job") == cfg.job.name
        and "govctl-alert" in p.user_labels
    }
    if emails is None:
        emails = tuple(sorted(mine))
        if not emails:
            raise UsageError(
                "no e-mail address to alert",
                fix="pass --email ADDRESS (repeat it for several addresses)",
            )
    warnings: list[str] = []
    label = {"managed-by": MANAGED_BY}
    wanted = {e: Channel(channel_name(e), e, True, label) for e in dict.fromkeys(emails)}
    if stale_after is None:
        stale = current.get(STALE)
        old = stale.conditions[0].duration if stale and stale.conditions else None
        if old is None:
            stale_after, warning = default_stale_after(cfg)
            warnings += [warning] if warning else []
        else:
            stale_after = old

    desired = desired_policies(cfg, stale_after, tuple(sorted(wanted)))
    channel_plans = _channel_plans(wanted, mine)
    policy_plans = _policy_plans(desired, current, by_name)
    shared = Plan(
        project,
        cfg.region,
        (*channel_plans, *policy_plans),
        warnings=tuple(warnings),
        details={"stale_after": validate.format_duration(stale_after)},
    )
    return AlertsPlan(
        plan=shared,
        channels=channel_plans,
        policies=policy_plans,
        stale_after=stale_after,
        desired_channels=wanted,
        desired_policies=desired,
        current_channels=mine,
        current_policies=current,
    )


# Apply ----------------------------------------------------------------------------------


def apply(p: AlertsPlan) -> Applied:
    """Make the changes of ``p``: channels first (policies name them), removed channels last."""
    done: list[str] = []
    names = {e: c.name for e, c in p.current_channels.items()}
    for res in p.channels:
        want = p.desired_channels.get(res.name)
        if res.action == CREATE and want is not None:
            names[res.name] = monitoring.create_channel(p.project, want).name
            done.append(f"created e-mail channel {res.name}")
        elif res.action == UPDATE and want is not None:
            monitoring.update_channel(replace(want, name=names[res.name]))
            done.append(f"updated e-mail channel {res.name}")
    for (kind, desired), res in zip(p.desired_policies.items(), p.policies, strict=True):
        spec = replace(desired, channels=tuple(names[e] for e in desired.channels))
        if res.action == CREATE:
            monitoring.create_policy(p.project, spec)
            done.append(f"created alert policy {desired.display_name!r}")
        elif res.action == UPDATE:
            have = p.current_policies[kind]  # as the plan saw it: a change since is refused
            monitoring.update_policy(replace(spec, name=have.name), have.updated)
            done.append(f"updated alert policy {desired.display_name!r}")
    for res in p.channels:
        if res.action == DELETE:
            monitoring.delete_channel(names[res.name])
            done.append(f"deleted e-mail channel {res.name}")
    return Applied(tuple(done))


# Show -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    channels: list[Channel]
    policies: list[Policy]
    emails: dict[str, str]  # channel name -> address

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": [
                {
                    "name": c.name,
                    "display_name": c.display_name,
                    "type": c.type,
                    "email": c.email or None,
                    "enabled": c.enabled,
                    "managed": _managed(c.user_labels),
                }
                for c in self.channels
            ],
            "policies": [
                {
                    "name": p.name,
                    "display_name": p.display_name,
                    "enabled": p.enabled,
                    "managed": _managed(p.user_labels),
                    "conditions": [
                        {
                            "display_name": c.display_name,
                            "kind": c.kind,
                            "filter": c.filter,
                            "duration": shown(c.duration),
                        }
                        for c in p.conditions
                    ],
                    "channels": [self.emails.get(c, c) for c in p.channels],
                }
                for p in self.policies
            ],
        }


def show(cfg: Config) -> View:
    project = cfg.require_project()
    channels = monitoring.list_channels(project)
    policies = monitoring.list_policies(project)
    policies.sort(key=lambda p: p.display_name)
    return View(channels, policies, {c.name: c.email for c in channels if c.email})


# Doctor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """What `govctl doctor` says about alerting: ``level`` "ok" or "warn", and the fix."""

    level: str
    summary: str
    fix: str | None = None


def status(cfg: Config) -> Status:
    """Whether the job's three alerts exist, are enabled and e-mail someone."""
    view = show(cfg)
    mine = {
        p.user_labels.get("govctl-alert"): p
        for p in view.policies
        if _managed(p.user_labels) and p.user_labels.get("job") == cfg.job.name
    }
    fix = "run `govctl alerts set --email ADDRESS`"
    if not mine:
        return Status("warn", f"no alert policy for {cfg.job.name}: nobody hears of a failure", fix)
    missing = [k for k in (FAILED, STALE, SCHEDULER) if k not in mine]
    off = sorted(p.display_name for p in mine.values() if not p.enabled)
    on = {c.name: c.email for c in view.channels if c.enabled and c.email}
    emails = sorted({on[c] for p in mine.values() for c in p.channels if c in on})
    if missing or off:
        said = "; ".join(
            ([f"missing: {', '.join(missing)}"] if missing else [])
            + ([f"disabled: {', '.join(off)}"] if off else [])
        )
        return Status("warn", f"alerts incomplete ({said})", "run `govctl alerts set`")
    if not emails:
        return Status("warn", "alert policies notify no enabled e-mail channel", fix)
    return Status("ok", f"{len(mine)} alert policies, e-mail to {', '.join(emails)}")
