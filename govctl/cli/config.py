"""`govctl config show`: every resolved setting and where it came from."""

from __future__ import annotations

import typer

from govctl import config, render
from govctl.cli.options import Json, Project, Region, settings

app = typer.Typer(
    help="Show govctl's settings.", no_args_is_help=True, add_completion=False,
    rich_markup_mode="markdown",
)  # fmt: skip


@app.callback()
def _group() -> None:
    """Show govctl's settings."""


@app.command()
def show(project: Project = None, region: Region = None, json: Json = False) -> None:
    """Print every setting with its value and source (flag, env, file, gcloud, default)."""
    cfg = settings(project, region)
    rows = [
        {
            "key": name,
            "value": config.display(name, setting.value),
            "source": setting.source,
        }
        for name, setting in cfg.settings.items()
    ]
    if json:
        render.json_out({"file": cfg.source, "settings": rows})
        return
    render.table(
        ["key", "value", "source"],
        [(r["key"], render.compact(r["value"]), r["source"]) for r in rows],
    )
    render.info(f"file: {cfg.source or 'none in this directory or above (govctl init writes one)'}")
