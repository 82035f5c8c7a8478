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


def _defaults_defined(path: Path) -> set[str]:
    """The module-level ``DEFAULT_*`` names a module assigns (not imports)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        found |= {t.id for t in targets if isinstance(t, ast.Name) and t.id.startswith("DEFAULT_")}
    return found


def test_settings_defaults_live_in_one_module() -> None:
    """Each limit of the job has one default, ingestion.settings': the command line without
    flags, :class:`Options` and the digest's settings all carry that value, and no other
    module assigns a ``DEFAULT_*`` of its own that could drift from it."""
    from ingestion import cli, digest, settings

    parser = cli.build_parser()
    for flag, name in [
        ("repo_timeout", "DEFAULT_REPO_TIMEOUT"),
        ("max_file_size", "DEFAULT_MAX_FILE_SIZE"),
        ("max_total_size", "DEFAULT_MAX_TOTAL_SIZE"),
        ("max_failure_ratio", "DEFAULT_MAX_FAILURE_RATIO"),
    ]:
        value = getattr(settings, name)
        assert parser.get_default(flag) == value, flag
        assert settings.Options.__dataclass_fields__[flag].default == value, flag
    shape = digest.DigestSettings()
    assert (shape.max_file_size, shape.max_total_size) == (
        settings.DEFAULT_MAX_FILE_SIZE,
        settings.DEFAULT_MAX_TOTAL_SIZE,
    )
    own = _defaults_defined(PACKAGE / "settings.py")
    assert own >= {"DEFAULT_MAX_FILE_SIZE", "DEFAULT_MAX_TOTAL_SIZE", "DEFAULT_REPO_TIMEOUT"}
    copies = {
        module_name(p): sorted(_defaults_defined(p) & own)
        for p in PACKAGE.rglob("*.py")
        if p.name != "settings.py" and _defaults_defined(p) & own
    }
    assert copies == {}
