"""The job's modules import each other without cycles (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import ingestion

PACKAGE = Path(ingestion.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "ingestion"}


def test_no_import_cycle_between_the_jobs_modules() -> None:
    graph = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for target in graph.get(start, ()):
            if target == goal:
                return True
            if target not in seen:
                seen.add(target)
                if reaches(target, goal, seen):
                    return True
        return False

    cycles = sorted(m for m in graph if m != "ingestion.__main__" and reaches(m, m, set()))
    assert cycles == []


def test_settings_defaults_live_in_one_module() -> None:
    """digest.py and cli.py take their defaults from ingestion.settings, not their own copies."""
    for name in ("cli.py", "digest.py", "runner.py"):
        text = (PACKAGE / name).read_text()
        assert "DEFAULT_MAX_TOTAL_SIZE =" not in text and "DEFAULT_MAX_FILE_SIZE =" not in text
