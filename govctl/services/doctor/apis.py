"""The check of the APIs the configuration uses (:mod:`govctl.services.apis`, the list
`govctl setup` enables), and what a check says when its own API is disabled."""

from __future__ import annotations

from govctl.errors import ApiDisabled
from govctl.services import apis as needed
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import FAIL, OK, SKIP, Action, Check, Context, short_api


def apis(ctx: Context, facts: Facts) -> Check:
    state: dict[str, bool] = facts.get("apis")
    off = [n for n, on in state.items() if not on]
    if not off:
        return Check("apis", OK, ", ".join(short_api(n) for n in state))
    why = {a.name: a.why for a in needed.needed(ctx.cfg)}
    said = ", ".join(f"{short_api(n)} ({why[n]})" if n in why else short_api(n) for n in off)
    return Check(
        "apis",
        FAIL,
        f"disabled: {said}",
        f"govctl doctor --fix, or govctl setup (or: gcloud services enable {' '.join(off)} "
        f"--project {ctx.project})",
        (Action("enable", ctx.project, apis=tuple(off)),),
    )


def not_checked(name: str, err: ApiDisabled) -> Check:
    """A check whose reads its disabled API refused: the apis check says it, with the fix."""
    return Check(name, SKIP, f"not checked: {short_api(err.api)} is disabled (see apis)")
