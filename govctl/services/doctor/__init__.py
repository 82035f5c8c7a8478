r"""`govctl doctor`: what is wrong with a deployment, each finding with its evidence and fix.

The facts (project, billing, APIs, policies, the job, the scheduler, executions, the bucket)
are read concurrently (:mod:`.facts`); each check then judges one thing from them: ``ok``,
``warn``, ``fail`` or ``skip`` (could not be judged, e.g. no job yet), one line of evidence,
and for every non-ok the command that fixes it (:mod:`.access`, :mod:`.schedule`,
:mod:`.runs`). Some fixes are :class:`~.model.Action`\ s that ``--fix`` applies: granting a
missing role, enabling APIs, resuming the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from govctl import config
from govctl.errors import CloudError, GovctlError
from govctl.gcp import inspect
from govctl.services.doctor import access, aftercare, builds, runs, schedule
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import SKIP, Action, Check, Context, Report, failed

__all__ = ["Action", "Check", "Report", "diagnose", "repair"]

PREFLIGHT_TIMEOUT = 10.0  # seconds for the first call, retries included

# (name, check) in the order they are shown; the name labels a check that errs.
CHECKS: list[tuple[str, Callable[[Context, Facts], Check]]] = [
    ("credentials", access.credentials),
    ("project", access.project),
    ("billing", access.billing),
    ("apis", access.apis),
    ("deploy rights", access.deploy_permissions),
    ("service account", access.service_account),
    ("build account", builds.build_account),
    ("bucket access", access.bucket_write),
    ("job", access.job),
    ("job access", access.invoker),
    ("scheduler agent", access.scheduler_agent),
    ("scheduler", schedule.scheduler_target),
    ("last attempt", schedule.scheduler_last_attempt),
    ("image", runs.image),
    ("last run", runs.last_execution),
    ("run time", runs.run_time),
    ("bucket", runs.bucket),
    ("digests", runs.digests),
    ("secrets", aftercare.secrets),
    ("alerts", aftercare.alerts),
]


def _guarded(
    name: str, check: Callable[[Context, Facts], Check], ctx: Context, facts: Facts
) -> Check:
    try:
        return check(ctx, facts)
    except GovctlError as err:
        return failed(name, err)


def diagnose(cfg: config.Config, now: Callable[[], datetime] | None = None) -> Report:
    ctx = Context(cfg, cfg.require_project(), now or (lambda: datetime.now(UTC)))
    # One quick call first: against an API that does not answer, every other read would
    # wait out its own retries (minutes), so say so at once instead.
    try:
        first = inspect.project(ctx.project, timeout=PREFLIGHT_TIMEOUT)
    except CloudError as err:
        if not any(s in str(err) for s in ("did not answer", "credentials")):
            first = None  # e.g. permission denied: the checks will each say what they can
        else:
            culprit = "credentials" if "credentials" in str(err) else "project"
            return Report(
                [
                    failed(name, err)
                    if name == culprit
                    else Check(name, SKIP, "not checked: Google Cloud could not be reached")
                    for name, _ in CHECKS
                ]
            )
    except GovctlError:
        first = None
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="doctor") as pool:
        facts = Facts(cfg, pool, project=first)
        futures = [pool.submit(_guarded, name, check, ctx, facts) for name, check in CHECKS]
        return Report([f.result() for f in futures])


def repair(actions: list[Action]) -> list[tuple[Action, GovctlError | None]]:
    """Apply each action; one failing does not stop the others."""
    results: list[tuple[Action, GovctlError | None]] = []
    for action in actions:
        try:
            action.apply()
        except GovctlError as err:
            results.append((action, err))
        else:
            results.append((action, None))
    return results
