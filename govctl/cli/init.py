"""`govctl init`: write a commented govctl.toml with every setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from govctl import config, render, validate
from govctl.cli.options import Project, Region
from govctl.errors import UsageError

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

HEADER = """\
# govctl settings. Precedence: flags > GOVCTL_* environment > this file > gcloud's
# active configuration (core/project, run/region) > the defaults shown commented out.
# `govctl config show` prints every resolved value and where it came from.
"""


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool | int):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def render_file(cfg: config.Config, explicit: dict[str, Any]) -> str:
    lines = [HEADER]
    section = ""
    for key in config.KEYS.values():
        head, _, name = key.name.rpartition(".")
        if head != section:
            section = head
            lines.append(f"\n[{section}]")
        lines.append(f"# {key.help}")
        if key.name in explicit:
            lines.append(f"{name} = {_toml(explicit[key.name])}")
            continue
        value = config.display(key.name, cfg.settings[key.name].value)
        if value is None:
            value = "" if key.name != "project" else "my-project"
        lines.append(f"# {name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


@app.command()
def init(
    project: Project = None,
    region: Region = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    path: Annotated[
        Path, typer.Option("--path", help="Where to write it.", show_default=True)
    ] = Path(config.CONFIG_FILE),
) -> None:
    """Write a commented `govctl.toml` with every setting.

    Refuses to overwrite an existing file without `--force`.
    """
    explicit = {}
    if project is not None:
        explicit["project"] = validate.project(project, "--project")
    if region is not None:
        explicit["region"] = validate.region(region, "--region")
    if path.exists() and not force:
        raise UsageError(f"{path} exists", fix="pass --force to overwrite it")
    # Resolve without any file, so the commented defaults are the real defaults.
    cfg = config.load(env={}, project=explicit.get("project"), region=explicit.get("region"))
    text = render_file(cfg, explicit)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written file
    render.info(f"wrote {path}; next: govctl config show, then govctl deploy --dry-run")
