"""The image's dependencies: declared, locked with hashes, installed only from the lock."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import ingestion

PACKAGE = Path(ingestion.__file__).parent
ROOT = PACKAGE.parent


def requirement_pins(path: Path) -> dict[str, str]:
    """``name -> version`` of the ``name==version`` lines (hash lines and comments skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_every_input_is_locked_at_its_pin_with_hashes() -> None:
    wanted = requirement_pins(PACKAGE / "requirements.in")
    text = (PACKAGE / "requirements.lock").read_text()
    locked = requirement_pins(PACKAGE / "requirements.lock")
    for name, version in wanted.items():
        assert locked.get(name) == version, name
    # Every package block carries at least one hash: pip --require-hashes would refuse it else.
    blocks = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2])
    assert len(blocks) == len(locked)
    assert all("--hash=sha256:" in block for block in blocks)


def test_the_image_installs_the_lock_with_hashes_required() -> None:
    dockerfile = (PACKAGE / "Dockerfile").read_text()
    assert "--require-hashes -r /tmp/requirements.lock" in dockerfile


def test_every_module_the_job_imports_is_declared() -> None:
    """A third-party import in ingestion/ must name its distribution in requirements.in (the
    job once imported urllib3 and loguru only because something else pulled them in)."""
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"ingestion", "__future__"}
    distributions = packages_distributions()
    declared = set(requirement_pins(PACKAGE / "requirements.in"))
    missing = {
        module: distributions.get(module)
        for module in third_party
        if not {d.lower() for d in distributions.get(module, [module])} & declared
    }
    # "google" is a namespace shared by several distributions: storage is the declared one.
    missing.pop("google", None)
    assert missing == {}
