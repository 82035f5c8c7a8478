"""`govctl destroy`: delete what govctl made for this configuration, planned like `deploy`."""

from __future__ import annotations

from typing import Annotated

import typer

from govctl import render
from govctl.cli import flow, options
from govctl.cli.options import Json, Project, Region, Yes, settings
from govctl.config import Config
from govctl.errors import GovctlError, UsageError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

TYPE_NAME_FIX = (
    "type the bucket's name after --confirm-bucket ([bucket] name; -y does not cover "
    "deleting the bucket)"
)


def _typed_name(
    cfg: Config, delete_bucket: bool, confirm_bucket: str | None, dry_run: bool
) -> None:
    """Bad input before any call: a --confirm-bucket that is not the bucket, or none where
    nobody can type the name (no terminal). A dry run deletes nothing and needs no name."""
    if confirm_bucket is not None and not delete_bucket:
        raise UsageError("--confirm-bucket needs --delete-bucket")
    if not delete_bucket or dry_run:
        return
    if confirm_bucket is not None and confirm_bucket != cfg.bucket:
        raise UsageError(
            f"--confirm-bucket {confirm_bucket!r} is not the bucket destroy would delete: "
            "expected the name of [bucket] name"
        )
    if confirm_bucket is None and not options.interactive():
        raise UsageError(
            "--delete-bucket needs the bucket's name typed, and stdin is not a terminal; "
            "nothing was deleted",
            fix=TYPE_NAME_FIX,
        )


@app.command()
def destroy(
    project: Project = None,
    region: Region = None,
    delete_bucket: Annotated[
        bool,
        typer.Option(
            "--delete-bucket",
            help="Also delete the bucket and every digest in it; asks you to type its name "
            "(-y does not cover it).",
        ),
    ] = False,
    confirm_bucket: Annotated[
        str | None,
        typer.Option(
            "--confirm-bucket",
            metavar="NAME",
            help="The bucket's name, typed out, for --delete-bucket without a terminal "
            "(scripts, CI); must equal [bucket] name.",
            show_default=False,
        ),
    ] = None,
    delete_service_account: Annotated[
        bool,
        typer.Option(
            "--delete-service-account",
            help="Also delete the service accounts setup made ([job] service_account and "
            "[build] service_account).",
        ),
    ] = False,
    delete_secrets: Annotated[
        bool,
        typer.Option(
            "--delete-secrets",
            help="Also delete the [job] secrets secrets from Secret Manager, values and all.",
        ),
    ] = False,
    dry_run: flow.DryRun = False,
    exit_code: flow.ExitCode = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Delete what govctl made for this configuration: the scheduler job, the Cloud Run job
    (running executions cancelled first), its alert policies and e-mail channels, the search
    data store, the image (or its repository, when govctl created it) and the grants setup
    made.

    Shows the plan first, every line a `-`; without `-y` it asks on a terminal and refuses
    elsewhere. Only what carries govctl's labels or the names in your settings is touched.
    The bucket, the service account and the secrets stay unless a flag says otherwise. Run it
    twice: the second says "nothing to do".
    """
    flags = flow.Options(dry_run=dry_run, exit_code=exit_code, yes=yes, json=json)
    cfg = settings(project, region)
    cfg.require_project()
    _typed_name(cfg, delete_bucket, confirm_bucket, dry_run)

    from govctl.services import destroy as service

    scope = service.Scope(delete_bucket, delete_service_account, delete_secrets)
    results: list[service.Destroyed] = []

    def prepare(p: service.DestroyPlan) -> service.DestroyPlan:
        if p.deletes_bucket and confirm_bucket is None:
            _ask_bucket(p)
        return p

    def apply(p: service.DestroyPlan) -> service.Destroyed:
        results.append(service.apply(p))
        return results[-1]

    step = flow.Step(
        "destroy", lambda: service.plan(cfg, scope), apply,
        unchanged="nothing to do", prepare=prepare,
    )  # fmt: skip
    _, outcome = flow.run(step, flags)
    flow.finish([outcome], flags)
    if results and results[-1].failed:
        _failed(results[-1])


def _ask_bucket(p: object) -> None:
    from govctl.services.destroy import DestroyPlan

    assert isinstance(p, DestroyPlan)
    count = "" if p.objects is None else f" and its {p.objects} object(s)"
    typed = render.ask(f"Type the bucket's name to delete gs://{p.bucket}{count}")
    if typed.strip() != p.bucket:
        raise GovctlError(
            f"{typed.strip()!r} is not the bucket's name: nothing was deleted",
            fix="rerun and type the name exactly, or leave out --delete-bucket to keep it",
        )


def _failed(result: object) -> None:
    """Each failure as it came, then what is left (what failed is what remains), exit 1."""
    from govctl.services.destroy import Destroyed

    assert isinstance(result, Destroyed)
    for failure in result.failed:
        render.error(f"{failure.label}: {failure.reason}")
    left = [failure.label for failure in result.failed]
    raise GovctlError(
        f"{len(left)} deletion{'' if len(left) == 1 else 's'} failed; left: {', '.join(left)}",
        fix="fix what the errors above say, then rerun `govctl destroy` (it deletes only what "
        "is left)",
    )
