"""Where settings come from besides flags and variables: the settings file and gcloud.

The settings file is the one ``$GOVCTL_CONFIG`` names, else the nearest ``govctl.toml`` in the
current directory or above it (:func:`find_file`); reading it rejects an unknown key or section
with a did-you-mean. gcloud's active configuration gives ``core/project`` and ``run/region``,
read from its files; gcloud is never run.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from govctl import validate
from govctl.config.keys import KEYS, SECTIONS
from govctl.errors import UsageError

CONFIG_ENV = "GOVCTL_CONFIG"
CONFIG_FILE = "govctl.toml"
CEILING_ENV = "GOVCTL_CEILING_DIRECTORIES"


def find_file(env: Mapping[str, str], start: Path | None = None) -> Path | None:
    """The settings file: the one ``$GOVCTL_CONFIG`` names, else the nearest ``govctl.toml``
    in the current directory or above it, as git finds ``.git``.

    The search goes up to the filesystem root, but not above your home directory (a
    ``govctl.toml`` in it is found, none above it) nor into a directory listed in
    ``$GOVCTL_CEILING_DIRECTORIES`` (colon-separated absolute paths, git's
    ``GIT_CEILING_DIRECTORIES``). A file found above the current directory that another user
    owns is refused rather than read (git's "dubious ownership", CVE-2022-24765: on a shared
    machine anyone can write ``/tmp/govctl.toml``).
    """
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise UsageError(
                f"{CONFIG_ENV}={path} does not exist", fix="unset it or create the file"
            )
        return path.absolute()
    here = (start or Path.cwd()).absolute()
    home = Path(env.get("HOME") or Path.home()).absolute()
    ceilings = {Path(p) for p in env.get(CEILING_ENV, "").split(os.pathsep) if os.path.isabs(p)}
    for directory in (here, *here.parents):
        if directory != here and directory in ceilings:
            return None
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            if directory != here:
                _check_owner(candidate)
            return candidate
        if directory == home:
            return None
    return None


def _check_owner(path: Path) -> None:
    getuid = getattr(os, "getuid", None)  # POSIX only; Windows has no owner to compare
    owner = path.stat().st_uid
    if getuid is not None and owner != getuid():
        raise UsageError(
            f"{path} was found above the current directory but belongs to another user "
            f"(uid {owner}): not read",
            fix=f"set {CONFIG_ENV}={path} to use it, or remove it",
        )


def shown(path: Path) -> str:
    """A settings file as messages name it: ``govctl.toml`` when it is in the current
    directory, else its whole path (which file was read is then news)."""
    return path.name if path.parent == Path.cwd().absolute() else str(path)


def _unknown(path: Path, label: str, suggestion: str | None) -> UsageError:
    return UsageError(f"{shown(path)}: unknown {label}", fix=suggestion)


def _suggest_top(name: str, value: Any) -> str | None:
    """For a top-level name that is no setting: a section (``[jobs]`` → ``[job]``), else a
    top-level key, else any key."""
    if isinstance(value, dict):
        return validate.suggest(f"[{name}]", [f"[{s}]" for s in SECTIONS])
    top = [k.label for k in KEYS.values() if "." not in k.name]
    return validate.suggest(name, top) or validate.suggest(name, [k.label for k in KEYS.values()])


def _suggest_in(section: str, sub: str) -> str | None:
    """For an unknown key of a section: the closest key of that section, else the same key in
    the section it belongs to (``[job] cron`` → ``[schedule] cron``)."""
    own = [k.rpartition(".")[2] for k in KEYS if k.startswith(section + ".")]
    close = validate.closest(sub, own)
    if close is not None:
        return f"did you mean [{section}] {close}?"
    elsewhere = [k.label for k in KEYS.values() if k.name.rpartition(".")[2] == sub]
    return f"did you mean {elsewhere[0]}?" if elsewhere else None


def read_file(path: Path) -> dict[str, Any]:
    """The file's values by key name (``job.cpu``), unparsed; an unknown key or section is a
    usage error with a did-you-mean."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read {shown(path)}: {err}") from None
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in SECTIONS:
            values.update(_read_section(path, name, value))
        elif name in KEYS:
            values[name] = value
        else:
            label = f"section [{name}]" if isinstance(value, dict) else f"key {name!r}"
            raise _unknown(path, label, _suggest_top(name, value))
    return values


def _read_section(path: Path, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{shown(path)}: [{name}] must be a table")
    for sub in value:
        if f"{name}.{sub}" not in KEYS:
            raise _unknown(path, f"key [{name}] {sub}", _suggest_in(name, sub))
    return {f"{name}.{sub}": subvalue for sub, subvalue in value.items()}


def gcloud_config(env: Mapping[str, str]) -> dict[str, str]:
    """``core/project`` and ``run/region`` of gcloud's active configuration, without gcloud."""
    found: dict[str, str] = {}
    root = Path(env.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud").expanduser()
    name = env.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not name:
        try:
            name = (root / "active_config").read_text(encoding="utf-8").strip() or "default"
        except OSError:
            name = "default"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / "configurations" / f"config_{name}", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return found  # a broken gcloud file is gcloud's business; fall through to defaults
    for key, (section, option, var) in {
        "project": ("core", "project", "CLOUDSDK_CORE_PROJECT"),
        "region": ("run", "region", "CLOUDSDK_RUN_REGION"),
    }.items():
        value = env.get(var) or parser.get(section, option, fallback=None)
        if value:
            found[key] = value.strip()
    return found
