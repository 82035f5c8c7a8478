"""The built image runs the job against a git daemon and a fake-gcs-server bucket."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator.storage import FakeGcs
from tests.image.podman import build_image, podman, podman_available, podman_env
from tests.support.git import GitServer, head, make_repo

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

METADATA_KEYS = {
    "org", "repo", "url", "pushedAt", "processedAt", "commit", "size", "sha256", "ingest_version",
}  # fmt: skip


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[str, dict[str, str]]]:
    if not podman_available():
        if os.environ.get("CI"):
            pytest.fail("podman is not installed; CI must test the image (.ci/run installs it)")
        pytest.skip("podman is not installed (apt-get install podman runc debootstrap); CI runs it")
    env = podman_env()
    yield build_image(env), env


def make_feed(server: GitServer, names: tuple[str, ...], path: Path) -> Path:
    feed = []
    for name in names:
        make_repo(server.root / "acme" / name, {"README.md": f"# {name}\n", "src/x.py": "x=1\n"})
        feed.append(
            {
                "owner": "acme",
                "name": name,
                "url": server.url(f"acme/{name}"),
                "pushedAt": "2025-01-01T00:00:00Z",
                "archived": False,
            }
        )
    path.write_text(json.dumps(feed))
    path.chmod(0o644)  # read by the image's non-root user through the bind mount
    return path


def test_job_in_image_runs_as_non_root(
    image: tuple[str, dict[str, str]], git_server: GitServer, tmp_path: Path
) -> None:
    """The files the job writes into a mounted directory sink belong to a non-root user."""
    tag, env = image
    feed = make_feed(git_server, ("solo",), tmp_path / "repos.json")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    out = podman(
        env,
        "run", "--rm", "--network", "host",
        "-v", f"{feed}:/feed/repos.json:ro", "-v", f"{out_dir}:/out",
        tag, "--feed", "/feed/repos.json", "--sink", "/out", "--allow-host", git_server.host,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, f"stdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"
    digest = out_dir / "acme" / "solo.md"
    assert "README.md" in digest.read_text()
    assert digest.stat().st_uid != 0
    # The image holds the job, not the operator toolkit (nor its dependencies).
    found = podman(
        env, "run", "--rm", "--entrypoint", "python", tag, "-c",
        "import importlib.util as u; print([m for m in ('govctl', 'typer', 'rich', "
        "'google.cloud.run_v2', 'grpc', 'gitingest', 'google.cloud.storage') if u.find_spec(m)])",
    )  # fmt: skip
    # gitingest neither: the job owns the code it needs (ingestion/gitingest_text.py).
    assert found.stdout.strip() == "['google.cloud.storage']", found.stderr
    assert (out_dir / "acme" / "solo.md.meta.json").stat().st_uid != 0


def test_image_ingests_two_repositories_into_bucket(
    image: tuple[str, dict[str, str]], git_server: GitServer, fake_gcs: FakeGcs, tmp_path: Path
) -> None:
    from google.cloud import storage

    tag, env = image
    feed_file = make_feed(git_server, ("alpha", "beta", "gamma"), tmp_path / "repos.json")
    client = storage.Client(project="test")
    bucket = client.create_bucket("digests")

    out = podman(
        env,
        "run", "--rm", "--network", "host",
        "-v", f"{feed_file}:/feed/repos.json:ro",
        "-e", f"STORAGE_EMULATOR_HOST={fake_gcs.url}",
        "-e", "CLOUD_RUN_EXECUTION=image-test",
        tag,
        "--feed", "/feed/repos.json",
        "--sink", "gs://digests",
        "--limit", "2",
        "--allow-host", git_server.host,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, f"stdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"
    # The job's own log lines are JSON on stdout (no terminal in the container).
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines and all("severity" in line for line in lines)

    blobs = {b.name: b for b in client.list_blobs(bucket) if not b.name.startswith("_")}
    assert sorted(blobs) == ["acme/alpha.md", "acme/beta.md"]
    for name, blob in blobs.items():
        assert blob.content_type.startswith("text/markdown")
        meta = blob.metadata or {}
        assert set(meta) >= METADATA_KEYS, meta
        assert meta["commit"] == head(git_server.root / name.removesuffix(".md"))
        assert "README.md" in blob.download_as_text()
    assert bucket.blob("_runs/image-test/task-0.json").exists()
    assert bucket.blob("_runs/image-test/feed-ref.json").exists()
    assert bucket.blob("_state/summary.json").exists()
    assert git_server.upload_packs() == 2


def test_image_fingerprint_is_the_pinned_one(image: tuple[str, dict[str, str]]) -> None:
    """The image installs the pinned pathspec, so its digests carry the same
    settings fingerprint as everywhere else: a rebuild never makes the job redo everything."""
    from ingestion.digest import DigestSettings

    tag, env = image
    out = podman(
        env, "run", "--rm", "--entrypoint", "python", tag, "-c",
        "from ingestion.digest import DigestSettings, check_pins; check_pins(); "
        "print(DigestSettings().fingerprint())",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == DigestSettings().fingerprint()
