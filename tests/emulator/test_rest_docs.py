"""The curl examples of docs/emulator.md ("REST, curl and gcloud"), run as written."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from govctl.emulator.server import Emulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"
CURL = shutil.which("curl")


def examples() -> list[tuple[str, str]]:
    """(command, documented output) of each ``$ curl`` of the section's console block."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### curl") :]
    block = section[section.index("```console\n") + len("```console\n") :]
    block = block[: block.index("```")]
    out: list[tuple[str, str]] = []
    command: list[str] = []
    output: list[str] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            if command:
                out.append(("\n".join(command), "\n".join(output)))
            command, output = [line[2:]], []
        elif command and command[-1].endswith("\\"):
            command.append(line)
        else:
            output.append(line)
    out.append(("\n".join(command), "\n".join(output)))
    return out


def like(documented: Any, actual: Any) -> bool:
    """Equal, where the documented "…" stands for any value."""
    if documented == "…":
        return True
    if isinstance(documented, dict):
        return (
            isinstance(actual, dict)
            and documented.keys() == actual.keys()
            and all(like(documented[k], actual[k]) for k in documented)
        )
    if isinstance(documented, list):
        return (
            isinstance(actual, list)
            and len(documented) == len(actual)
            and all(like(d, a) for d, a in zip(documented, actual, strict=True))
        )
    return bool(documented == actual)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_the_curl_examples_answer_as_documented(emulator: Emulator) -> None:
    found = examples()
    assert len(found) == 3  # a create with a body, a GET, an error
    for command, documented in found:
        assert command.startswith("curl ")
        line = command.replace("127.0.0.1:8087", f"127.0.0.1:{emulator.rest_port}")
        done = subprocess.run(
            ["bash", "-c", line], capture_output=True, text=True, timeout=30, check=True
        )
        assert like(json.loads(documented), json.loads(done.stdout)), (command, done.stdout)
        # The documented layout (indented or one line, as prettyPrint says) is the real one.
        assert (documented.count("\n") == 0) == (done.stdout.strip().count("\n") == 0)
