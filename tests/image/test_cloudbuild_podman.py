"""`govctl emulator start --build-with podman`: Cloud Build builds the image for real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator.server import Emulator
from govctl.gcp import build as gcp_build
from govctl.services import image
from tests.image.podman import podman, podman_available, podman_env
from tests.support.builds import build_account_for
from tests.support.git import make_repo

pytestmark = [pytest.mark.image, pytest.mark.timeout(300)]

PROJECT = "demo-project"
REGION = "europe-west2"
PATH = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
# FROM scratch needs no base image and no registry.
TREE: dict[str, str | bytes] = {
    "ingestion/__init__.py": "",
    "ingestion/Dockerfile": "FROM scratch\nCOPY ingestion /ingestion\n",
}


@pytest.fixture
def podman_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Emulator, dict[str, str]]]:
    if not podman_available():
        if os.environ.get("CI"):
            pytest.fail("podman is not installed; CI must test the image (.ci/run installs it)")
        pytest.skip("podman is not installed (apt-get install podman runc debootstrap); CI runs it")
    env = podman_env()
    monkeypatch.setenv("CONTAINERS_CONF", env["CONTAINERS_CONF"])
    with Emulator(state_dir=tmp_path / "state", build_with=["podman", "build"]) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield emu, env


def test_build_with_podman_builds_the_image(
    podman_emulator: tuple[Emulator, dict[str, str]], tmp_path: Path
) -> None:
    _, env = podman_emulator
    root = make_repo(tmp_path / "src", TREE)
    lines: list[str] = []
    built = image.build_image(
        PROJECT, REGION, root=root, on_log=lines.append, reuse=False,
        account=build_account_for(PROJECT),
    )  # fmt: skip
    # The digest is podman's, not the tarball's hash.
    _, info = image.source_bundle(root)
    assert built.digest != "sha256:" + info.sha256
    assert any("built locally, not pushed" in line for line in lines)
    assert any(line.startswith("Step #0: ") and "COPY ingestion" in line for line in lines)
    out = podman(env, "image", "inspect", "--format", "{{.Digest}}", f"{PATH}:{built.tag}")
    assert out.returncode == 0, out.stderr
    assert image.resolve_image(f"{PATH}:{built.tag}") == built.uri
    podman(env, "rmi", "-f", f"{PATH}:{built.tag}", f"{PATH}:latest")


def test_a_failing_dockerfile_fails_the_build_with_its_output(
    podman_emulator: tuple[Emulator, dict[str, str]], tmp_path: Path
) -> None:
    root = make_repo(
        tmp_path / "src", {**TREE, "ingestion/Dockerfile": "FROM scratch\nCOPY missing /x\n"}
    )
    with pytest.raises(gcp_build.BuildFailed, match="non-zero status") as err:
        image.build_image(
            PROJECT, REGION, root=root, reuse=False, account=build_account_for(PROJECT)
        )
    assert any("missing" in line for line in err.value.log_tail)
