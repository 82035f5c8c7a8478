"""What pyproject.toml declares: pins that agree with the job, floors on every dependency, and
the extras check that names the missing extra. (The built wheel is tests/test_wheel.py.)"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from govctl import extras

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_lists(project: dict[str, Any]) -> dict[str, list[Requirement]]:
    """The base list ("") and each extra's, parsed."""
    lists = {"": project["dependencies"], **project["optional-dependencies"]}
    return {name: [Requirement(line) for line in lines] for name, lines in lists.items()}


def lowest_constraints() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lowest_constraints", ROOT / "scripts" / "lowest_constraints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def locked_versions() -> dict[str, str]:
    """``name -> version`` of ingestion/requirements.lock (uv's format: hashes and comments on
    their own indented lines, a backslash continuing each requirement)."""
    out = {}
    for line in (ROOT / "ingestion" / "requirements.lock").read_text().splitlines():
        if not line.strip() or line[0] in "# -" or line[0].isspace():
            continue
        req = Requirement(line.rstrip(" \\"))
        (spec,) = req.specifier
        assert spec.operator == "==", line
        out[canonicalize_name(req.name)] = spec.version
    return out


# --- pins --------------------------------------------------------------------------------------


def test_no_list_names_a_package_twice() -> None:
    for name, reqs in requirement_lists(pyproject()["project"]).items():
        names = [canonicalize_name(r.name) for r in reqs]
        assert len(names) == len(set(names)), (name or "dependencies", names)


def test_fingerprint_pins_are_the_job_extras_pins_and_the_locks() -> None:
    import ingestion.digest as digest_module

    lists = requirement_lists(pyproject()["project"])
    locked = locked_versions()
    assert digest_module.FINGERPRINT_PINS
    for package, pinned in digest_module.FINGERPRINT_PINS.items():
        job = [r for r in lists["job"] if canonicalize_name(r.name) == package]
        assert [str(r.specifier) for r in job] == [f"=={pinned}"], package
        # Any other list that names the package must let the pin through.
        for name, reqs in lists.items():
            for req in reqs:
                if canonicalize_name(req.name) == package:
                    assert req.specifier.contains(pinned), (name, str(req))
        assert locked[package] == pinned, package
    digest_module.check_pins()  # and the installed ones (this environment's)


# --- floors ------------------------------------------------------------------------------------


def test_every_runtime_dependency_has_a_floor_and_the_floors_are_the_constraints() -> None:
    module = lowest_constraints()
    floors = module.constraints(pyproject())
    assert floors["typer"] >= module.Version("0.27.2")  # typer.TyperException
    assert str(floors["pathspec"]) == "1.1.1"  # the job's pin wins over the CLI's >=0.12
    assert "pytest" not in floors and "govctl" not in floors  # tools; self-references


def test_the_constraints_script_refuses_an_unbounded_dependency() -> None:
    module = lowest_constraints()
    project = {
        "name": "x",
        "dependencies": ["a>=1.2", "b==3.0", "c"],
        "optional-dependencies": {"more": ["a>=1.5", "x[more]"], "dev": ["pytest"]},
    }
    with pytest.raises(SystemExit, match=r"no lower bound on: c\b"):
        module.constraints({"project": project})
    project["dependencies"] = ["a>=1.2", "b==3.0"]
    assert {k: str(v) for k, v in module.constraints({"project": project}).items()} == {
        "a": "1.5",
        "b": "3.0",
    }


# --- extras ------------------------------------------------------------------------------------


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution (its dist-info on sys.path) with a base and three extras."""
    info = tmp_path / "fakeapp-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakeapp\nVersion: 1.0\n"
        "Requires-Dist: surely-not-installed-base\n"
        'Requires-Dist: pytest>=1 ; python_version >= "3"\n'
        "Provides-Extra: present\n"
        'Requires-Dist: pytest>=1 ; extra == "present"\n'
        "Provides-Extra: absent\n"
        'Requires-Dist: surely-not-installed-xyz>=1 ; extra == "absent"\n'
        f'Requires-Dist: pytest>{pytest.__version__} ; extra == "absent"\n'
        "Provides-Extra: outer\n"
        'Requires-Dist: fakeapp[absent] ; extra == "outer"\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakeapp"


def test_an_installed_extra_is_missing_nothing(fake_dist: str) -> None:
    assert extras.missing("present", fake_dist) == []
    assert extras.missing("unknown", fake_dist) == []


def test_a_missing_extra_names_what_is_absent_or_too_old(fake_dist: str) -> None:
    gaps = extras.missing("absent", fake_dist)
    assert gaps == [
        "surely-not-installed-xyz (not installed)",
        f"pytest {pytest.__version__} (needs >{pytest.__version__})",
    ]
    assert extras.missing("outer", fake_dist) == gaps  # an extra made of another


def test_require_says_the_pip_install_in_one_line(fake_dist: str) -> None:
    extras.require("present", "`fakeapp go`", fake_dist)
    with pytest.raises(extras.MissingExtra) as err:
        extras.require("absent", "`fakeapp go`", fake_dist)
    assert str(err.value).startswith("`fakeapp go` needs fakeapp's absent extra: surely-not")
    assert str(err.value).endswith("— pip install 'fakeapp[absent]'")
    assert err.value.exit_code == 1 and "\n" not in str(err.value)


def test_this_environment_has_every_extra() -> None:
    """`make install` installs .[dev], which holds all the extras."""
    for extra in ("job", "emulator", "all", "test"):
        assert extras.missing(extra) == [], extra


# --- what older floors print ---------------------------------------------------------------------


def _warned(monkeypatch: pytest.MonkeyPatch, warnoptions: list[str]) -> list[str]:
    import warnings

    from govctl.cli.main import quiet_python_support_notices

    monkeypatch.setattr(sys, "warnoptions", warnoptions)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_python_support_notices()
        for module in ("google.api_core._python_version_support", "google.cloud.other"):
            warnings.warn_explicit(f"from {module}", FutureWarning, "x.py", 1, module=module)
    return [str(w.message) for w in caught]


def test_the_cli_hides_only_google_api_cores_python_end_of_life_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """google-api-core < 2.44 prints it from a year before the Python's end of life (found by
    make test-lowest: `govctl run`'s first stderr line was a FutureWarning)."""
    assert _warned(monkeypatch, []) == ["from google.cloud.other"]
    assert len(_warned(monkeypatch, ["default"])) == 2  # python -W …: the operator asked
