"""Checks that the pipeline cleans up after itself: the bucket's lifecycle rule on the run
files, and the image repository's cleanup policies (both made by `govctl setup`; see
:mod:`govctl.services.retention`)."""

from __future__ import annotations

from govctl.errors import GovctlError
from govctl.gcp import artifacts
from govctl.services import retention
from govctl.services.doctor.facts import Facts
from govctl.services.doctor.model import OK, SKIP, WARN, Check, Context


def run_files(ctx: Context, facts: Facts) -> Check:
    if facts.get("bucket") is None:
        return Check("run files", SKIP, "no bucket (see bucket)")
    found = retention.check_rule(ctx.project, ctx.cfg.bucket)
    if found is None:
        return Check("run files", SKIP, "no bucket (see bucket)")
    return Check("run files", OK if found.ok else WARN, found.evidence, found.fix)


def image_cleanup(ctx: Context, facts: Facts) -> Check:
    job = facts.get("job")
    image = job.image if job is not None else ctx.cfg.job.image
    try:
        ref = artifacts.parse_image(image)
    except GovctlError:
        return Check("image cleanup", SKIP, f"{image} is not in Artifact Registry (see image)")
    found = retention.check_policies(ref)
    if found is None:
        return Check("image cleanup", SKIP, "no image repository (see image)")
    return Check("image cleanup", OK if found.ok else WARN, found.evidence, found.fix)
