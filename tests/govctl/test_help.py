"""Finding one's way: a misspelt command or section gets the closest one, every command's help
ends with real examples (the ones docs/cli.md shows), flags show no type, and the emulator's
help names every API its registry serves."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from govctl.cli import examples
from govctl.cli.main import GROUPS, command, main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands() -> Iterator[tuple[str, Any]]:
    """Every command path ("" for govctl itself, "schedule set", …) and its click command."""
    root = command()
    yield "", root
    ctx = typer.Context(root)
    for name in root.list_commands(ctx):
        yield from _walk(name, root.get_command(ctx, name))


def _walk(path: str, cmd: Any) -> Iterator[tuple[str, Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(f"{path} {name}", sub)


PATHS = [path for path, _ in _commands()]


# ----------------------------------------------------------------------- did you mean (6)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["deplyo"], "unknown command 'deplyo' for `govctl` — did you mean deploy?"),
        (["exectuions", "list"], "unknown command 'exectuions' for `govctl` — did you mean "
         "executions?"),
        (["schedule", "pasue"], "unknown command 'pasue' for `govctl schedule` — did you mean "
         "pause?"),
        (["secrets", "lsit"], "unknown command 'lsit' for `govctl secrets` — did you mean list?"),
        (["emulator", "strat"], "unknown command 'strat' for `govctl emulator` — did you mean "
         "start?"),
        (["xyzzy"], "unknown command 'xyzzy' for `govctl` (`govctl --help`)"),
    ],
)  # fmt: skip
def test_a_misspelt_command_names_the_closest(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert said in err


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ("[jobs]\ncpu = 2\n", "unknown section [jobs] — did you mean [job]?"),
        ("[schedul]\ncron = '0 3 * * *'\n", "unknown section [schedul] — did you mean [schedule]?"),
        ("[job]\nmemroy = '8Gi'\n", "unknown key [job] memroy — did you mean [job] memory?"),
        ("[job]\ncron = '0 3 * * *'\n", "unknown key [job] cron — did you mean [schedule] cron?"),
        ("[bucket]\nnmae = 'b'\n", "unknown key [bucket] nmae — did you mean [bucket] name?"),
        ("regoin = 'europe-west2'\n", "unknown key 'regoin' — did you mean region?"),
    ],
)
def test_a_misspelt_section_or_key_names_the_closest(
    toml: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVCTL_CONFIG", raising=False)
    (tmp_path / "govctl.toml").write_text(toml)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert said in err


# ------------------------------------------------------------------------- examples (7)


def test_every_command_has_two_or_three_examples_and_no_example_is_orphaned() -> None:
    assert sorted(examples.EXAMPLES) == sorted(PATHS)
    for path, shown in examples.EXAMPLES.items():
        assert 2 <= len(shown) <= 3, path


@pytest.mark.parametrize("path", PATHS)
def test_help_ends_with_the_examples_and_shows_no_type_for_flags(
    path: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main([*path.split(), "--help"]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("Examples") :]
    for example in examples.EXAMPLES[path]:
        assert f"# {example.says}" in tail and example.line in tail, example
    assert "<bool>" not in out and "BOOLEAN" not in out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "[[" not in usage, usage  # an optional argument is bracketed once
    # The flags are there, without a type; an option that takes a value keeps its own.
    assert re.search(r"--help +-h +Show this message", out)


def _invocations(line: str) -> Iterator[list[str]]:
    """The argument lists of each `govctl …` in a shell line (pipes, &&, eval "$(…)"); a
    `$(…)` is an invocation of its own, and a value (`computed`) where it stands."""
    inner = re.findall(r"\$\(([^)]*)\)", line)
    outer = re.sub(r'"?\$\([^)]*\)"?', "computed", line)
    for text in [outer, *inner]:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if set(token) <= set(";&|"):
                if "govctl" in words:
                    yield words[words.index("govctl") + 1 :]
                words = []
            else:
                words.append(token)


@pytest.mark.parametrize("path", sorted(examples.EXAMPLES))
def test_every_example_parses(path: str) -> None:
    """Each example is a command line govctl accepts (its command, flags and values), so a
    renamed flag cannot leave a stale example behind."""
    for example in examples.EXAMPLES[path]:
        found = list(_invocations(example.line))
        assert found, example
        for argv in found:
            _parse(argv)
        assert any(" ".join(argv).startswith(path) for argv in found), example


def _parse(argv: list[str]) -> None:
    """Parse as govctl would, down to the command, without running it: an unknown command or
    flag, or a bad value, raises."""
    cmd: Any = command()
    ctx = cmd.make_context("govctl", list(argv))
    while hasattr(cmd, "commands"):
        name, cmd, rest = cmd.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = cmd.make_context(name, rest, parent=ctx)
    assert not ctx.args or cmd.allow_extra_args, argv


@pytest.mark.parametrize("group", ["", *GROUPS])
def test_docs_show_each_groups_examples(group: str) -> None:
    """docs/cli.md shows each group's examples as its help does, in its section (print the
    block with `python -m govctl.cli.examples GROUP`)."""
    chunks = re.split(r"\n(?=## )", DOCS.read_text(encoding="utf-8"))
    if group:
        chunks = [c for c in chunks[1:] if re.search(rf"govctl {group}\b", c.splitlines()[0])]
    assert chunks, f"docs/cli.md has no section of govctl {group}"
    block = examples.docs_block(group)
    assert block in chunks[0], f"the section of govctl {group} in docs/cli.md should show:\n{block}"


# ----------------------------------------------------------------------------- help text


def test_every_group_says_what_it_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in GROUPS:
        row = re.search(rf"│ {name} +(\S.*)│", out)
        assert row and row.group(1).strip(), f"`govctl {name}` has no help text"


def test_emulator_help_names_every_api_its_registry_serves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from govctl.cli.emulator import PRODUCTS
    from govctl.emulator.server import Emulator

    emu = Emulator(storage=False)
    emu.start()
    try:
        served = [api.full_name for api in emu.cloud.registry()]
    finally:
        emu.stop()
    products = {
        api: [p for p, prefixes in PRODUCTS.items() if api.startswith(prefixes)]
        for api in served
        if api != "google.longrunning.Operations"
    }
    assert all(len(found) == 1 for found in products.values()), products
    assert {found[0] for found in products.values()} == set(PRODUCTS)
    assert main(["emulator", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for product in PRODUCTS:
        assert product in out
    assert f"{len(PRODUCTS)} Google APIs" in out and "Cloud Storage" in out
