"""Drift: where what is deployed differs from the settings (govctl.toml, GOVCTL_*), found by
the very plans `govctl deploy` and `govctl alerts set` make — no second diff — and said as
terraform's plan says it, with the command that reconciles it.

- *job drift*: the Cloud Run job's fields (image path, CPU, memory, tasks, timeout, retries,
  args, env, secrets, identity, labels) from deploy's plan, the deployed image kept as the one
  to deploy (a build is not drift; another image *path* is);
- *schedule drift*: the scheduler job (cron, time zone, target, token) from the same plan;
  its paused state is the "scheduler" check's (`--fix` resumes it), only mentioned here;
- *alerts drift*: the channels and policies `govctl alerts set` would change with the
  ``[alerts]`` settings (or, without them, the addresses and window already set).

Values read ``deployed → settings``: what applying the settings would do.
"""

from __future__ import annotations

from dataclasses import replace

from govctl.config import Config
from govctl.errors import UsageError
from govctl.gcp import artifacts, jobs
from govctl.services import deploy
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import OK, SKIP, WARN, Check, Context
from govctl.services.plan import UNCHANGED, UPDATE, Change, ResourcePlan, shown

# Job fields a deployed value can be kept for by writing it into [job].
_JOB_KEYS = ("image", "cpu", "memory", "task_timeout", "max_retries", "tasks", "parallelism",
             "service_account", "args")  # fmt: skip
_LISTED = 4  # changes shown in one line; the rest counted


def deploy_plan(cfg: Config) -> deploy.DeployPlan:
    """Deploy's plan with the deployed image as the one to deploy (reads only)."""
    current = jobs.get_job(cfg.job_path)
    if current is None:
        return deploy.plan(cfg, deploy.ImageChoice(cfg.job.image, None), with_problems=False)
    choice = deploy.ImageChoice(current.image, current.labels.get("commit-sha"))
    planned = deploy.plan(cfg, choice, with_problems=False)
    moved = _image_path_change(cfg, current.image)
    if moved is None:
        return planned
    job = planned.job
    changes = (moved, *job.changes)
    return _with_job(planned, ResourcePlan(job.kind, job.name, job.action, changes))


def _image_path_change(cfg: Config, deployed: str) -> Change | None:
    try:
        path = artifacts.parse_image(deployed).path
    except UsageError:
        path = deployed.split("@")[0].rsplit(":", 1)[0]
    want = cfg.job.image.split("@")[0]
    return None if path == want else Change("image", path, want)


def _with_job(p: deploy.DeployPlan, job: ResourcePlan) -> deploy.DeployPlan:
    action = job.action if job.action != UNCHANGED else UPDATE
    return replace(p, job=ResourcePlan(job.kind, job.name, action, job.changes))


def _said(changes: tuple[Change, ...]) -> str:
    parts = [f"{c.field} {shown(c.old)} → {shown(c.new)}" for c in changes[:_LISTED]]
    more = len(changes) - _LISTED
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _toml(value: object) -> str:
    value = shown(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value) if isinstance(value, int) else f'"{value}"'


def _keep(section: str, changes: tuple[Change, ...], keys: tuple[str, ...]) -> str:
    kept = [f"{c.field} = {_toml(c.old)}" for c in changes if c.field in keys and c.old]
    if not kept:
        return "or change govctl.toml to match what is deployed"
    return f"or keep what is deployed: [{section}] " + ", ".join(kept) + " in govctl.toml"


def job_drift(ctx: Context, facts: Facts) -> Check:
    if facts.get("job") is None:
        return Check("job drift", SKIP, "no job to compare (see job)")
    job = facts.get("deploy_plan").job
    if not job.changes:
        return Check("job drift", OK, f"{job.name} is as the settings say")
    return Check(
        "job drift",
        WARN,
        f"{job.name} differs from the settings: {_said(job.changes)}",
        "govctl deploy applies the settings (`govctl deploy --dry-run` shows the plan), "
        + _keep("job", job.changes, _JOB_KEYS),
    )


def schedule_drift(ctx: Context, facts: Facts) -> Check:
    sched = facts.get("scheduler")
    if sched is None:
        return Check("schedule drift", SKIP, "no scheduler job to compare (see scheduler)")
    plan = facts.get("deploy_plan").schedule
    paused = " (PAUSED: see scheduler)" if sched.state == "PAUSED" else ""
    if not plan.changes:
        return Check(
            "schedule drift", OK,
            f"{plan.name} is as the settings say ({sched.cron}, {sched.time_zone}){paused}",
        )  # fmt: skip
    fields = {c.field for c in plan.changes}
    s = ctx.cfg.schedule
    apply = "govctl deploy"
    if fields <= {"cron", "time_zone"}:
        apply = f'govctl schedule set "{s.cron}" --time-zone {s.time_zone} (or govctl deploy)'
    return Check(
        "schedule drift",
        WARN,
        f"{plan.name} differs from the settings: {_said(plan.changes)}{paused}",
        f"{apply} applies the settings, " + _keep("schedule", plan.changes, ("cron", "time_zone")),
    )


def alerts_drift(ctx: Context, facts: Facts) -> Check:
    from govctl.services import alerts

    cfg = ctx.cfg
    try:
        planned = alerts.plan(cfg, cfg.alerts.emails or None, cfg.alerts.stale_after)
    except UsageError:  # no address anywhere: nothing set, nothing to compare
        planned = None
    if planned is None or not planned.current_policies:
        return Check("alerts drift", SKIP, "no alerts set yet (see alerts)")
    changed = [r for r in planned.plan.resources if r.action != UNCHANGED]
    if not changed:
        return Check("alerts drift", OK, "channels and policies are as the settings say")
    said = "; ".join(f"{r.kind} {r.name}: {r.action.value}" for r in changed[:_LISTED])
    more = len(changed) - _LISTED
    return Check(
        "alerts drift",
        WARN,
        f"alerts differ from the settings: {said}" + (f" and {more} more" if more > 0 else ""),
        "govctl alerts set applies the settings ([alerts] emails and stale_after); "
        "`govctl alerts set --dry-run` shows the plan",
    )
