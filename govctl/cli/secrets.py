"""`govctl secrets`: values for the job's `[job] secrets` variables, kept in Secret Manager."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from govctl import render, validate
from govctl.cli import complete
from govctl.cli.options import Json, Project, Region, interactive, settings
from govctl.errors import GovctlError, UsageError

app = typer.Typer(
    help="Store the values of the job's `[job] secrets` variables in Secret Manager, and list "
    "whether the job can read them.",
    add_completion=False, rich_markup_mode="markdown", no_args_is_help=True,
)  # fmt: skip


def _read_value() -> bytes:
    """The value from stdin (piped) or a hidden prompt; never from the command line, where
    shell history and `ps` would keep it."""
    if not interactive():
        return sys.stdin.buffer.read()
    entered = typer.prompt("Value (hidden)", hide_input=True, default="", show_default=False)
    return str(entered).encode()


# Extra words are collected rather than refused by the parser: its message would echo them,
# and an extra word here is most likely the value itself.
@app.command("set", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def set_(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The job's environment variable, e.g. GITHUB_TOKEN.",
            autocompletion=complete.secret_names,
        ),
    ],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="Secret id [default: NAME's [job] secrets entry, else NAME in lowercase "
            "with hyphens: GITHUB_TOKEN → github-token].",
            show_default=False,
            autocompletion=complete.secret_ids,
        ),
    ] = None,
    project: Project = None,
    region: Region = None,
) -> None:
    """Store a value for NAME in Secret Manager and let the job's service account read it.

    The value comes from stdin when it is not a terminal (`gh auth token | govctl secrets set
    GITHUB_TOKEN`), else from a hidden prompt; one trailing newline is removed. Creates the
    secret (automatic replication) or adds a version, then grants the job's service account
    `roles/secretmanager.secretAccessor` on it. The value is never printed.
    """
    if ctx.args:
        raise UsageError(
            "`govctl secrets set` takes only NAME: the value is read from stdin or a hidden "
            "prompt, never from the command line (shell history and `ps` would keep it)",
            fix='`printf %s "$TOKEN" | govctl secrets set NAME`, or run it and type the value',
        )
    validate.env_name(name, "NAME")
    if secret is not None:
        validate.secret_ref(secret, "--secret")
        if ":" in secret:
            raise UsageError(f"invalid --secret {secret!r}: expected a secret id, no version")
    cfg = settings(project, region)
    cfg.require_project()
    if secret is not None and name in cfg.job.secrets:
        configured = cfg.job.secrets[name].partition(":")[0]
        if configured != secret:
            raise UsageError(
                f"invalid --secret {secret!r}: [job] secrets maps {name} to {configured!r}, "
                "so the job would not read it",
                fix=f"drop --secret, or change [job] secrets entry {name} first",
            )

    from govctl.services import secrets as service

    value = service.check_value(_read_value())
    with render.progress("storing the value in Secret Manager"):
        result = service.set_value(cfg, name, value, secret)
    del value
    render.info(
        f"{'created secret' if result.created else 'secret'} {result.secret}: "
        f"added version {result.version}"
    )
    if result.account_missing:
        render.warn(
            f"service account {result.service_account} does not exist yet, so it was not "
            "granted access: `govctl setup` creates it and grants it, or rerun this command "
            "after creating it"
        )
    if result.granted:
        render.info(
            f"granted roles/secretmanager.secretAccessor to {result.service_account} on "
            f"{result.secret}"
        )
    pinned = result.configured and ":" in cfg.job.secrets[name]
    if pinned:
        render.info(
            f"next: set [job] secrets.{name} to version {result.version}, then govctl deploy"
        )
    elif result.configured:
        render.info("next: govctl deploy, if the job does not reference it yet (each task "
                    "reads the newest version when it starts)")  # fmt: skip
    else:
        render.info(
            f'next: add {name} = "{result.secret}" to [job] secrets in govctl.toml, '
            "then govctl deploy"
        )


@app.command("list")
def list_(project: Project = None, region: Region = None, json: Json = False) -> None:
    """Each `[job] secrets` entry: its secret, the newest enabled version, and whether the
    job's service account can read it. Never shows a value. Exit 1 when the job could not
    read one of them."""
    cfg = settings(project, region)
    cfg.require_project()
    from govctl.services import secrets as service

    with render.progress("reading Secret Manager"):
        found = service.status(cfg)
    if json:
        render.json_out({"secrets": [s.to_dict() for s in found]})
    elif not found:
        render.info('no [job] secrets: add NAME = "secret-id" to [job] secrets in govctl.toml')
    else:
        render.table(
            ["NAME", "SECRET", "VERSION", "LATEST ENABLED", "ACCESS", "STATUS"],
            [
                (
                    s.name,
                    s.secret,
                    s.version,
                    s.latest_enabled,
                    None if s.access is None else "yes" if s.access else "no",
                    "ok" if s.ok else s.problem,
                )
                for s in found
            ],
        )
    bad = [s for s in found if not s.ok]
    if bad:
        raise GovctlError(
            f"the job could not read {len(bad)} of {len(found)} secrets: {bad[0].problem}",
            fix=bad[0].fix,
        )
