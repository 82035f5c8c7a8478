"""`govctl deploy`: show what would change (like `terraform plan`), then make it so."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated

import typer

from govctl import render, validate
from govctl.cli import flow
from govctl.cli.options import Json, Project, Region, Yes, settings
from govctl.errors import UsageError

if TYPE_CHECKING:
    from govctl.services.image import BuildMode

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

NEXT = "next: govctl run --limit 10"


class Build(enum.StrEnum):
    cloud = "cloud"
    local = "local"

    @property
    def mode(self) -> BuildMode:
        return "local" if self is Build.local else "cloud"


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
    dry_run: flow.DryRun = False,
    exit_code: flow.ExitCode = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Create or update the Cloud Run job, its scheduler and its IAM binding.

    Shows the plan first: `+` create, `~` update (`old → new`), `=` unchanged. Without `-y`
    it asks on a terminal and refuses elsewhere. Every write checks the etag the plan read,
    so a change made meanwhile is an error, not overwritten.
    """  # fmt: skip
    options = flow.Options(dry_run=dry_run, exit_code=exit_code, yes=yes, json=json)
    if image is not None and build is not None:
        raise UsageError("--image and --build exclude each other", fix="pass one of them")
    if image is not None:
        image = validate.image(image, "--image")
    cfg = settings(project, region)
    cfg.require_project()

    from govctl.services import deploy as service

    def read() -> service.DeployPlan:
        mode = None if build is None else build.mode
        return service.plan(cfg, service.choose_image(cfg, image, mode, allow_dirty))

    def said(p: service.DeployPlan) -> None:
        if p.image.build:
            where = "with Cloud Build" if p.image.build == "cloud" else "locally"
            render.info(f"{p.image.ref} is not built yet: apply builds it {where} first")

    def prepare(p: service.DeployPlan) -> service.DeployPlan:
        if not p.image.build:
            return p
        how = "Cloud Build" if p.image.build == "cloud" else "locally"
        render.info(f"building {p.image.ref} ({how})")
        built = service.build(
            cfg, p.image, allow_dirty, on_log=lambda line: render.info(f"  {line}")
        )
        render.info(f"built {built.ref}")
        with render.progress("reading the current state"):
            return service.plan(cfg, built)  # the same plan, pinned to the digest

    step = flow.Step("deploy", read, service.apply, said=said, prepare=prepare)
    _, outcome = flow.run(step, options)
    flow.finish([outcome], options)
    if outcome is flow.Outcome.APPLIED:
        render.info(NEXT)
