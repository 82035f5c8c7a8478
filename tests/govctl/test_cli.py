"""The govctl command itself: help, version, exit codes, error reporting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from govctl import __version__
from govctl.cli.main import invoke, main

ENV_NO_DEBUG = {k: v for k, v in os.environ.items() if k != "GOVCTL_DEBUG"}


def test_help_imports_no_google_cloud_module() -> None:
    # A fresh interpreter: the test process has long imported everything.
    code = (
        "import sys, json\n"
        "from govctl.cli.main import main\n"
        "from govctl.cli.main import GROUPS\n"
        "argvs = [['--help'], ['emulator', 'start', '-h']] + [[g, '--help'] for g in GROUPS]\n"
        "codes = [main(argv) for argv in argvs]\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc')))\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV_NO_DEBUG
    )
    elapsed = time.monotonic() - t0
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["codes"]) == {0}
    assert result["heavy"] == []
    print(f"govctl --help (three helps, fresh interpreter): {elapsed:.2f} s")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"govctl {__version__}\n"


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "govctl", "--version"], capture_output=True, text=True
    )
    assert (proc.returncode, proc.stdout) == (0, f"govctl {__version__}\n")


@pytest.mark.parametrize(
    "argv",
    [["no-such-command"], ["emulator", "start", "--port", "eighty"], ["--no-such-flag"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # One line, like every other bad input, naming what was wrong and where help is.
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert argv[-1] in captured.err or "--port" in captured.err
    assert "--help`)" in captured.err


def test_govctl_error_is_one_line_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVCTL_DEBUG", raising=False)
    assert main(["emulator", "env", "--state-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: no emulator is running on {tmp_path}")
    assert "run `govctl emulator start --detach`" in captured.err


def test_govctl_debug_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVCTL_DEBUG", "1")
    assert main(["emulator", "env", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("error: no emulator is running")


def _crashing_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def crash() -> None:
        raise ValueError("boom")

    return app


def test_unexpected_exception_is_an_internal_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVCTL_DEBUG", raising=False)
    assert invoke(typer.main.get_command(_crashing_app()), []) == 1
    assert capsys.readouterr().err == (
        "error: internal error: ValueError: boom, rerun with GOVCTL_DEBUG=1\n"
    )
    monkeypatch.setenv("GOVCTL_DEBUG", "1")
    assert invoke(typer.main.get_command(_crashing_app()), []) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert 'raise ValueError("boom")' in err


@pytest.mark.parametrize("value", ["no-equals-sign", "=python -m x", "pattern=", " = "])
def test_bad_map_image_exits_2_naming_the_value(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["emulator", "start", "--state-dir", str(tmp_path), "--map-image", value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"invalid --map-image {value!r}: expected PATTERN=COMMAND" in err
    assert not (tmp_path / "emulator.json").exists()


def test_stop_when_nothing_runs_is_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "stop", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == f"no emulator is running on {tmp_path}\n"


def test_status_when_nothing_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "status", "--state-dir", str(tmp_path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"running": False, "state_dir": str(tmp_path)}
    assert main(["emulator", "status", "--state-dir", str(tmp_path)]) == 1
    assert "not running" in capsys.readouterr().err


def test_map_image_entries_come_before_the_defaults() -> None:
    from govctl.emulator.images import image_map, ingestion_command

    mapping = image_map(["*/govreposcrape/ingestion*=echo mine", "other/*=run x=1"])
    assert list(mapping.items())[:2] == [
        ("*/govreposcrape/ingestion*", "echo mine"),
        ("other/*", "run x=1"),  # only the first '=' separates
    ]
    assert mapping["govctl-ingestion*"] == ingestion_command()
    assert ingestion_command().endswith(" -m ingestion")
