"""Settings resolve in one order: defaults < govctl.toml < GOVCTL_* env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from govctl import config
from govctl.errors import UsageError


def test_defaults_without_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={})
    assert (cfg.project, cfg.region, cfg.source) == (None, "europe-west2", None)
    assert (cfg.emulator_port, cfg.emulator_storage_port) == (8086, 4443)
    assert cfg.state_dir.parts[-2:] == ("govctl", "emulator")


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("govctl.toml").write_text(
        'project = "from-file"\nregion = "us-central1"\n'
        '[emulator]\nport = 9000\nstorage_port = 9001\nstate_dir = "~/emu"\n'
    )
    cfg = config.load(env={})
    assert (cfg.project, cfg.region, cfg.emulator_port) == ("from-file", "us-central1", 9000)
    assert cfg.state_dir == Path("~/emu").expanduser()
    assert cfg.source == Path("govctl.toml")

    env = {"GOVCTL_PROJECT": "from-env", "GOVCTL_EMULATOR_PORT": "9100"}
    cfg = config.load(env=env)
    assert (cfg.project, cfg.region, cfg.emulator_port) == ("from-env", "us-central1", 9100)

    cfg = config.load(env=env, emulator_port=0, project=None, emulator_state_dir=tmp_path)
    assert (cfg.project, cfg.emulator_port, cfg.state_dir) == ("from-env", 0, tmp_path)
    assert cfg.emulator_storage_port == 9001


def test_govctl_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('region = "europe-west1"\n')
    assert config.load(env={"GOVCTL_CONFIG": str(path)}).region == "europe-west1"
    with pytest.raises(UsageError, match="does not exist"):
        config.load(env={"GOVCTL_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('projcet = "x"\n', "unknown key 'projcet'"),
        ("[emulator]\nprot = 1\n", r"unknown key \[emulator\] prot"),
        ("[emulator]\nport = 70000\n", "expected a port number"),
        ('[emulator]\nport = "http"\n', "expected a port number"),
        ("region = 3\n", "expected a non-empty string"),
        ("region = \n", "cannot read"),
    ],
)
def test_bad_file_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "govctl.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        config.load(env={"GOVCTL_CONFIG": str(path)})


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(UsageError, match="GOVCTL_EMULATOR_PORT"):
        config.load(env={"GOVCTL_EMULATOR_PORT": "-1"})
