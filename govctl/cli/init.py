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


def _sample(path: Path, explicit: dict[str, Any]) -> None:
    """Point the feed at the embedded sample, made next to the file, and say so."""
    from govctl.services import sample

    made = sample.create(path.parent / sample.SAMPLE_DIR)
    explicit["job.feed"] = made.feed
    explicit["job.args"] = [sample.ALLOW_LOCAL]
    render.info(
        f"the cloud is govctl emulator: [job] feed is the embedded sample ({made.repositories} "
        f"repositories created as local git repositories in {made.directory}), as `make demo` "
        "uses; the default feed is on the internet, which the emulator's job may not reach "
        "(--no-sample-feed keeps it)"
    )


@app.command()
def init(
    project: Project = None,
    region: Region = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    path: Annotated[
        Path, typer.Option("--path", help="Where to write it.", show_default=True)
    ] = Path(config.CONFIG_FILE),
    sample_feed: Annotated[
        bool | None,
        typer.Option(
            "--sample-feed/--no-sample-feed",
            help="Set [job] feed to the embedded sample, its repositories made locally "
            "[default: on when the cloud is `govctl emulator` (GOVCTL_EMULATOR_HOST)].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a commented `govctl.toml` with every setting.

    Refuses to overwrite an existing file without `--force`. On the emulator the feed is the
    embedded sample (the default feed is on the internet), unless `--no-sample-feed`.
    """
    explicit: dict[str, Any] = {}
    if project is not None:
        explicit["project"] = validate.project(project, "--project")
    if region is not None:
        explicit["region"] = validate.region(region, "--region")
    if path.exists() and not force:
        raise UsageError(f"{path} exists", fix="pass --force to overwrite it")
    if sample_feed is None:
        sample_feed = config.cloud_target().is_emulator
    if sample_feed:
        _sample(path, explicit)
    # Resolve without any file, so the commented defaults are the real defaults.
    cfg = config.load(env={}, project=explicit.get("project"), region=explicit.get("region"))
    text = render_file(cfg, explicit)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written file
    render.info(f"wrote {path}; next: govctl config show, then govctl deploy --dry-run")
