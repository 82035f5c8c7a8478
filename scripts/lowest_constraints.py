"""Print pip constraints that pin every runtime dependency of govctl to its declared floor.

``make test-lowest`` installs the project with these constraints and runs the command and
emulator tests, so a floor in pyproject.toml that is too low fails here rather than on an
operator's machine. Runtime means the base dependencies and every extra except the tools
ones (dev, test). A dependency with no lower bound is an error: an unbounded requirement
claims to work with any version ever released.

Usage: python scripts/lowest_constraints.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

TOOL_EXTRAS = {"dev", "test"}
FLOOR_OPERATORS = {"==", ">=", "~=", "==="}


def runtime_requirements(pyproject: dict[str, object]) -> list[Requirement]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    name = canonicalize_name(project["name"])
    lines = list(project.get("dependencies", []))
    for extra, extra_lines in project.get("optional-dependencies", {}).items():
        if extra not in TOOL_EXTRAS:
            lines += extra_lines
    reqs = [Requirement(line) for line in lines]
    return [r for r in reqs if canonicalize_name(r.name) != name]  # govctl[job] and the like


def floor(req: Requirement) -> Version | None:
    versions = [Version(s.version) for s in req.specifier if s.operator in FLOOR_OPERATORS]
    return max(versions, default=None)


def constraints(pyproject: dict[str, object]) -> dict[str, Version]:
    """The lowest version of each package that every requirement on it allows (the highest
    of their floors: with all extras installed, that is the lowest that can be resolved)."""
    out: dict[str, Version] = {}
    unbounded = []
    for req in runtime_requirements(pyproject):
        low = floor(req)
        if low is None:
            unbounded.append(str(req))
            continue
        key = canonicalize_name(req.name)
        out[key] = max(out.get(key, low), low)
    if unbounded:
        raise SystemExit(f"no lower bound on: {', '.join(unbounded)} (add >=FLOOR)")
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "pyproject.toml")
    pins = constraints(tomllib.loads(path.read_text(encoding="utf-8")))
    print(f"# The floors of {path}'s runtime dependencies (scripts/lowest_constraints.py).")
    for name, version in sorted(pins.items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
