"""`govctl deploy`: show what would change (like `terraform plan`), then make it so."""

from __future__ import annotations

import enum
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Image:
    ref: str  # what the plan shows: PATH@sha256:… , or PATH:TAG while still to be built
    commit: str | None
    build: str | None = None  # "cloud" / "local" when it must be built before applying


def _image(
    cfg: config.Config, image_flag: str | None, build: Build | None, allow_dirty: bool
) -> _Image:
    """The image to deploy: ``--image`` resolved to its digest, or the bundled job's image.

    A build is looked up by its tag (the commit, or the package version) first: an image
    already built from this source is reused, so an unchanged redeploy stays unchanged.
    Reads only; a build that is needed happens after the plan is confirmed.
    """
    from govctl.gcp import artifacts
    from govctl.services import image as images

    if image_flag is not None:
        ref = validate.image(image_flag, "--image")
        with render.progress("resolving the image's digest"):
            return _Image(images.resolve_image(ref), None)
    target = artifacts.parse_image(cfg.job.image)
    _, info = images.source_bundle(allow_dirty=allow_dirty)
    with render.progress("looking for an image built from this source"):
        found = images.find_image(
            target.project, target.location, info.tag,
            repository=target.repository, image=target.image,
        )  # fmt: skip
    if found is not None:
        return _Image(found, info.commit)
    return _Image(f"{target.path}:{info.tag}", info.commit, (build or Build.cloud).value)


def _build(cfg: config.Config, pending: _Image, allow_dirty: bool) -> _Image:
    from govctl.gcp import artifacts
    from govctl.services import image as images

    target = artifacts.parse_image(cfg.job.image)
    render.info(
        f"building {pending.ref} ({'Cloud Build' if pending.build == 'cloud' else 'locally'})"
    )
    built = images.build_image(
        target.project, target.location,
        repository=target.repository, image=target.image,
        mode="local" if pending.build == "local" else "cloud",
        allow_dirty=allow_dirty, on_log=lambda line: render.info(f"  {line}"),
    )  # fmt: skip
    render.info(f"built {built.uri}")
    return _Image(built.uri, built.commit)


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
    wanted = _image(cfg, image, build, allow_dirty)

    from govctl.services import deploy as service

    with render.progress("reading the current state"):
        plan = service.plan(cfg, wanted.ref, wanted.commit)
    if json:
        render.json_out({**plan.to_dict(), "build": wanted.build})
    else:
        render.plan(plan.to_dict())
        if wanted.build:
            where = "with Cloud Build" if wanted.build == "cloud" else "locally"
            render.info(f"{wanted.ref} is not built yet: apply builds it {where} first")
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
    if wanted.build:
        built = _build(cfg, wanted, allow_dirty)
        with render.progress("reading the current state"):
            plan = service.plan(cfg, built.ref, built.commit)  # the same plan, pinned
    with render.progress("applying"):
        applied = service.apply(plan)
    for line in applied.done:
        render.info(line)
    render.info(NEXT)
