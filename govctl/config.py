"""govctl's settings, resolved in one place: defaults < govctl.toml < GOVCTL_* env < flags.

The file is ``$GOVCTL_CONFIG`` if set, else ``./govctl.toml`` if present::

    project = "my-project"
    region = "europe-west2"

    [emulator]
    state_dir = "~/.local/share/govctl/emulator"
    host = "127.0.0.1"
    port = 8086
    storage_port = 4443

Unknown keys and wrong types are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from govctl.errors import UsageError

DEFAULT_REGION = "europe-west2"
# Fixed defaults so `eval "$(govctl emulator env)"` keeps working across restarts; 0 = a
# free port. 4443 is fake-gcs-server's own default; 8086 is free on a typical laptop.
DEFAULT_EMULATOR_PORT = 8086
DEFAULT_STORAGE_PORT = 4443

CONFIG_ENV = "GOVCTL_CONFIG"
CONFIG_FILE = "govctl.toml"


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("govctl")) / "emulator"


@dataclass(frozen=True)
class Config:
    project: str | None = None
    region: str = DEFAULT_REGION
    emulator_state_dir: Path | None = None  # None: default_state_dir(), computed on use
    emulator_host: str = "127.0.0.1"
    emulator_port: int = DEFAULT_EMULATOR_PORT
    emulator_storage_port: int = DEFAULT_STORAGE_PORT
    source: Path | None = None  # the file read, if any

    @property
    def state_dir(self) -> Path:
        return self.emulator_state_dir or default_state_dir()


# config field -> (toml section or "", toml key, GOVCTL_* env name, kind)
_KEYS: dict[str, tuple[str, str, str, str]] = {
    "project": ("", "project", "GOVCTL_PROJECT", "str"),
    "region": ("", "region", "GOVCTL_REGION", "str"),
    "emulator_state_dir": ("emulator", "state_dir", "GOVCTL_EMULATOR_STATE_DIR", "path"),
    "emulator_host": ("emulator", "host", "GOVCTL_EMULATOR_BIND", "str"),
    "emulator_port": ("emulator", "port", "GOVCTL_EMULATOR_PORT", "port"),
    "emulator_storage_port": ("emulator", "storage_port", "GOVCTL_EMULATOR_STORAGE_PORT", "port"),
}


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _KEYS[name][3]
    if kind == "port":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise UsageError(f"{where}: expected a port number 0-65535, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: expected a non-empty string, got {value!r}")
    if kind == "path":
        return Path(value).expanduser()
    return value


def _config_path(env: Mapping[str, str]) -> Path | None:
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise UsageError(
                f"{CONFIG_ENV}={path} does not exist", fix="unset it or create the file"
            )
        return path
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    known = {(section, key): name for name, (section, key, _, _) in _KEYS.items()}
    sections = {section for section, _ in known if section}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in sections and isinstance(value, dict):
            for sub, subvalue in value.items():
                if (key, sub) not in known:
                    raise UsageError(f"{path}: unknown key [{key}] {sub}")
                values[known[key, sub]] = _coerce(known[key, sub], subvalue, f"{path}: {sub}")
        elif ("", key) in known:
            values[known["", key]] = _coerce(known["", key], value, f"{path}: {key}")
        else:
            raise UsageError(f"{path}: unknown key {key!r}")
    return values


def load(env: Mapping[str, str] | None = None, **flags: Any) -> Config:
    """The resolved settings. ``flags`` are CLI options by field name; ``None`` means unset."""
    env = os.environ if env is None else env
    path = _config_path(env)
    values: dict[str, Any] = _read_file(path) if path else {}
    for name, (_, _, var, _) in _KEYS.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], var)
    for name, value in flags.items():
        if name not in _KEYS:
            raise TypeError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, str(value) if isinstance(value, Path) else value, name)
    return replace(Config(source=path), **values)
