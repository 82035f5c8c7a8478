"""Checks of what keeps the job healthy after deploy: alerts that tell someone, and the
secrets the job reads (issue: the day after deploy)."""

from __future__ import annotations

from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import FAIL, OK, SKIP, WARN, Check, Context


def alerts(ctx: Context, facts: Facts) -> Check:
    from govctl.services import alerts as service

    found = service.status(ctx.cfg)
    return Check("alerts", OK if found.level == "ok" else WARN, found.summary, found.fix)


def secrets(ctx: Context, facts: Facts) -> Check:
    from govctl.services import secrets as service

    if not ctx.cfg.job.secrets:
        return Check("secrets", SKIP, "the job reads no secret ([job] secrets is empty)")
    found = service.status(ctx.cfg)
    bad = [s for s in found if not s.ok]
    if not bad:
        names = ", ".join(f"{s.name} ({s.secret} v{s.latest_enabled})" for s in found)
        return Check("secrets", OK, f"{ctx.cfg.job.service_account} can read {names}")
    first = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return Check("secrets", FAIL, f"{first.name}: {first.problem}{more}", first.fix)
