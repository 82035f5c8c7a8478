"""`govctl deploy`: show what would change (like `terraform plan`), then make it so."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from govctl import config, render, validate
from govctl.cli.options import Json, Project, Region, Yes, confirm, settings
from govctl.errors import GovctlError, UsageError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

NEXT = "next: govctl run --limit 10"
EXIT_CHANGES = 3  # --dry-run --exit-code: there is something to apply


class Build(enum.StrEnum):
    cloud = "cloud"
    local = "local"


def _image(
    cfg: config.Config, image_flag: str | None, build: Build | None, allow_dirty: bool
) -> tuple[str, str | None]:
    """The image reference to deploy and the commit it was built from (None: unknown).

    For now only ``--image`` is accepted; building (``--build``, the default) comes with the
    image service.
    """
    if image_flag is None:
        raise UsageError(
            f"--build {(build or Build.cloud).value}: building the image is not available yet",
            fix="pass --image REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE@sha256:DIGEST",
        )
    ref = validate.image(image_flag, "--image")
    if "@sha256:" not in ref:
        render.warn(
            f"--image {ref} has no @sha256: digest, so the job runs whatever the tag points to "
            "at each start; it is deployed as given (govctl pins digests once its Artifact "
            "Registry lookup is wired)"
        )
    return ref, None


@app.command()
def deploy(
    project: Project = None,
    region: Region = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            help="Deploy this image (REGION-docker.pkg.dev/…@sha256:…).",
            show_default=False,
        ),
    ] = None,
    build: Annotated[
        Build | None,
        typer.Option(
            "--build",
            help="Build the image with Cloud Build or podman/docker [default: cloud].",
            show_default=False,
        ),
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Build from a git tree with uncommitted changes.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and stop; writes nothing.")
    ] = False,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code",
            help="With --dry-run: exit 3 when there are changes, 0 when there are none.",
        ),
    ] = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Create or update the Cloud Run job, its scheduler and its IAM binding.

    Shows the plan first: `+` create, `~` update (`old → new`), `=` unchanged. Without `-y`
    it asks on a terminal and refuses elsewhere. Every write checks the etag the plan read,
    so a change made meanwhile is an error, not overwritten.
    """  # fmt: skip
    if exit_code and not dry_run:
        raise UsageError("--exit-code needs --dry-run")
    if image is not None and build is not None:
        raise UsageError("--image and --build exclude each other", fix="pass one of them")
    cfg = settings(project, region)
    cfg.require_project()
    image_ref, commit = _image(cfg, image, build, allow_dirty)

    from govctl.services import deploy as service

    with render.progress("reading the current state"):
        plan = service.plan(cfg, image_ref, commit)
    if json:
        render.json_out(plan.to_dict())
    else:
        render.plan(plan.to_dict())
    if plan.problems:
        raise GovctlError(
            "cannot deploy: " + "; ".join(p.what for p in plan.problems),
            fix="; ".join(dict.fromkeys(p.fix for p in plan.problems)),
        )
    if not plan.has_changes:
        render.info("no changes")
        return
    if dry_run:
        render.info("dry run: nothing written")
        if exit_code:
            raise typer.Exit(EXIT_CHANGES)
        return
    confirm(yes, "Apply?", alternative="--dry-run to only see the plan")
    with render.progress("applying"):
        applied = service.apply(plan)
    for line in applied.done:
        render.info(line)
    render.info(NEXT)
