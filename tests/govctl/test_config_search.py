"""govctl.toml is found as git finds .git: in the current directory or the nearest above it
(not above $HOME, nor into a GOVCTL_CEILING_DIRECTORIES entry); `config show` names the file;
relative paths in it mean paths beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from govctl.cli.main import main


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/home/proj/a/b`` as the current directory, HOME at ``tmp_path/home``."""
    root = tmp_path.resolve()
    work = root / "home" / "proj" / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(root / "no-gcloud"))
    for key in ("GOVCTL_CONFIG", "GOVCTL_CEILING_DIRECTORIES", "GOVCTL_PROJECT",
                "GOVCTL_EMULATOR_STATE_DIR"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    return root


def _show(capsys: pytest.CaptureFixture[str]) -> tuple[str | None, dict[str, object], str]:
    """`config show --json`: the file, the values, and what stderr said."""
    assert main(["config", "show", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    return data["file"], {r["key"]: r["value"] for r in data["settings"]}, captured.err


def _write(path: Path, project: str) -> Path:
    path.write_text(f'project = "{project}"\n', encoding="utf-8")
    return path


def test_the_nearest_file_above_is_used_and_named(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tree / "home" / "govctl.toml", "home-project")
    nearest = _write(tree / "home" / "proj" / "govctl.toml", "proj-project")
    found, values, _ = _show(capsys)
    assert (found, values["project"]) == (str(nearest), "proj-project")
    # The table says it too, with the whole path.
    assert main(["config", "show"]) == 0
    assert f"file: {nearest}" in capsys.readouterr().err


def test_govctl_config_names_a_file_and_no_search_happens(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tree / "home" / "proj" / "govctl.toml", "proj-project")
    named = _write(tree / "named.toml", "named-project")
    monkeypatch.setenv("GOVCTL_CONFIG", str(named))
    found, values, _ = _show(capsys)
    assert (found, values["project"]) == (str(named), "named-project")


def test_the_search_stops_at_home(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tree / "govctl.toml", "above-home")  # above $HOME: never read
    found, values, _ = _show(capsys)
    assert (found, values["project"]) == (None, None)
    assert main(["config", "show"]) == 0
    assert "file: none in this directory or above" in capsys.readouterr().err
    home_file = _write(tree / "home" / "govctl.toml", "home-project")  # $HOME itself: read
    found, values, _ = _show(capsys)
    assert (found, values["project"]) == (str(home_file), "home-project")


def test_a_ceiling_directory_is_not_entered(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = tree / "home" / "proj"
    _write(proj / "govctl.toml", "proj-project")
    monkeypatch.setenv("GOVCTL_CEILING_DIRECTORIES", f"/nowhere{os.pathsep}{proj}")
    assert _show(capsys)[0] is None
    monkeypatch.chdir(proj)  # the current directory is always looked at
    assert _show(capsys)[0] == str(proj / "govctl.toml")


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs chown")
def test_a_file_above_owned_by_someone_else_is_refused(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = _write(tree / "home" / "proj" / "govctl.toml", "planted-project")
    os.chown(planted, 4242, -1)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{planted} was found above the current directory but belongs to another user" in err
    assert f"set GOVCTL_CONFIG={planted}" in err
    monkeypatch.chdir(planted.parent)  # in the current directory, it is the operator's own
    assert _show(capsys)[1]["project"] == "planted-project"


def test_relative_paths_in_the_file_are_beside_it(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = tree / "home" / "proj"
    (proj / "govctl.toml").write_text('[emulator]\nstate_dir = "state/emulator"\n')
    assert _show(capsys)[1]["emulator.state_dir"] == str(proj / "state" / "emulator")
    # A variable's relative path is the shell's: relative to the current directory.
    monkeypatch.setenv("GOVCTL_EMULATOR_STATE_DIR", "here")
    assert _show(capsys)[1]["emulator.state_dir"] == "here"


def test_a_mistake_names_the_file_it_is_in(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = tree / "home" / "proj"
    (proj / "govctl.toml").write_text("[jobs]\ncpu = 2\n")
    assert main(["config", "show"]) == 2  # from proj/a/b: the whole path of the file above
    said = f"error: {proj / 'govctl.toml'}: unknown section [jobs] — did you mean [job]?\n"
    assert capsys.readouterr().err == said
    monkeypatch.chdir(proj)  # here: its name is enough
    assert main(["config", "show"]) == 2
    assert capsys.readouterr().err.startswith("error: govctl.toml: unknown section [jobs]")
