"""`govctl local run --container`: builds the image with podman and runs the job in it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from govctl.cli.main import main
from tests.image.podman import BASE_IMAGE, podman_available, podman_env
from tests.support.git import GitServer, make_repo

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]


def test_container_run_limit_2_writes_2_digests_to_a_directory(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    if not podman_available():
        if os.environ.get("CI"):
            pytest.fail("podman is not installed; CI must test the image")
        pytest.skip("podman is not installed (apt-get install podman runc debootstrap)")
    for key, value in podman_env().items():
        monkeypatch.setenv(key, value)
    names = ["alpha", "beta", "gamma"]
    entries = []
    for n in names:
        make_repo(git_server.root / "acme" / n, {"README.md": f"# {n}\n"})
        entries.append({"owner": "acme", "name": n, "url": git_server.url(f"acme/{n}"),
                        "pushedAt": "2026-11-01T00:00:00Z"})  # fmt: skip
    feed = tmp_path / "repos.json"
    feed.write_text(json.dumps(entries))
    monkeypatch.chdir(tmp_path)
    for var in [k for k in os.environ if k.startswith("GOVCTL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("GOVCTL_JOB_FEED", f"file://{feed}")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)

    status = main(["local", "run", "--container", "--engine", "podman", "--build-arg",
                   f"BASE={BASE_IMAGE}", "--limit", "2", "--", "--allow-host",
                   git_server.host])  # fmt: skip

    err = capsys.readouterr().err
    assert status == 0, err[-3000:]
    out_dir = tmp_path / "digests"  # the default sink
    digests = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.md"))
    assert digests == ["acme/alpha.md", "acme/beta.md"]
    assert f"-v {feed}:/run/feed/repos.json:ro" in err  # the feed file, mounted read-only
    # The digests belong to the operator who ran the command.
    assert {p.stat().st_uid for p in out_dir.rglob("*.md")} == {os.getuid()}
