"""services/image: the source bundle, builds through the loopback cloud, --image resolution."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from google.cloud import artifactregistry_v1 as ar

from govctl.emulator.server import Emulator
from govctl.errors import CloudError, GovctlError, NotFound, UsageError
from govctl.gcp import build as gcp_build
from govctl.gcp import clients
from govctl.services import image
from tests.support.builds import build_account_for
from tests.support.git import git, head, make_repo

PROJECT = "demo-project"
REGION = "europe-west2"
PATH = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
REPO = f"projects/{PROJECT}/locations/{REGION}/repositories/govreposcrape"

TREE: dict[str, str | bytes] = {
    "ingestion/__init__.py": "",
    "ingestion/__main__.py": "print('job')\n",
    "ingestion/Dockerfile": "FROM python:3.12-slim\nCOPY ingestion ./ingestion\n",
    "ingestion/requirements.lock": "gitingest==0.3.1\n",
    "ingestion/data/defaults.json": "{}\n",
    "ingestion/sample/repos.json": "[]\n",
    "ingestion/scratch.txt": "local notes\n",
    "govctl/__init__.py": "",
    "tests/test_x.py": "",
    "README.md": "readme\n",
    ".dockerignore": "*\n!ingestion/\n**/__pycache__\n*.txt\ningestion/sample\n",
}


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def checkout(tmp_path: Path, files: dict[str, str | bytes] | None = None) -> Path:
    return make_repo(tmp_path / "src", files or TREE)


# --- the bundle -------------------------------------------------------------------------------


def test_bundle_is_the_ingestion_package_as_docker_would_send_it(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "ingestion" / "__pycache__").mkdir()
    (root / "ingestion" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "ingestion" / "stale.pyc").write_bytes(b"\0")
    data, info = image.source_bundle(root)
    assert names(data) == [
        ".dockerignore",
        "ingestion",
        "ingestion/Dockerfile",
        "ingestion/__init__.py",
        "ingestion/__main__.py",
        "ingestion/data",
        "ingestion/data/defaults.json",
        "ingestion/requirements.lock",
        # "*.txt" is docker's root only: ingestion/scratch.txt stays (git's rules would drop it)
        "ingestion/scratch.txt",
    ]
    assert info.files == 7
    assert info.commit == head(root)[:12] == info.tag
    assert not info.dirty


def test_bundle_bytes_depend_only_on_the_files(tmp_path: Path) -> None:
    first = checkout(tmp_path / "a")
    second = checkout(tmp_path / "b")
    os.utime(second / "ingestion" / "__main__.py", (1, 1))
    os.chmod(second / "ingestion" / "data" / "defaults.json", 0o600)
    a, info_a = image.source_bundle(first)
    b, info_b = image.source_bundle(second)
    assert a == b
    assert info_a.sha256 == info_b.sha256
    with tarfile.open(fileobj=io.BytesIO(a), mode="r:gz") as tar:
        members = tar.getmembers()
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert gzip.decompress(a)  # a plain gzip stream
    assert a[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header
    # One byte of content changes the bundle.
    (second / "ingestion" / "__main__.py").write_text("print('job!')\n")
    git("commit", "-qam", "change", cwd=second)
    assert image.source_bundle(second)[1].sha256 != info_a.sha256


def test_dirty_tree_is_refused_unless_allowed(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "ingestion" / "__main__.py").write_text("print('edited')\n")
    with pytest.raises(UsageError, match=r"uncommitted changes.*--allow-dirty"):
        image.source_bundle(root)
    _, info = image.source_bundle(root, allow_dirty=True)
    assert info.dirty
    assert info.tag.startswith(head(root)[:12] + "-dirty-")


def test_untracked_files_count_only_when_bundled(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "tests" / "new_test.py").write_text("")  # outside the bundle
    (root / "ingestion" / "__pycache__").mkdir()
    (root / "ingestion" / "__pycache__" / "y.pyc").write_bytes(b"")
    assert not image.source_bundle(root)[1].dirty
    (root / "ingestion" / "new.py").write_text("")
    with pytest.raises(UsageError, match="uncommitted"):
        image.source_bundle(root)


def test_missing_dockerfile_is_an_error(tmp_path: Path) -> None:
    files = {k: v for k, v in TREE.items() if k != "ingestion/Dockerfile"}
    with pytest.raises(GovctlError, match="no ingestion/Dockerfile"):
        image.source_bundle(checkout(tmp_path, files))


# --- --image ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("gcr.io/p/ingestion:v1", "Container Registry is shut down"),
        ("eu.gcr.io/p/ingestion", "Container Registry is shut down"),
        ("docker.io/library/python:3.12", "not an Artifact Registry image"),
        (f"{REGION}-docker.pkg.dev/{PROJECT}/ingestion", "not an Artifact Registry image"),
        (f"{PATH}@sha256:abc", "not sha256: followed by 64 hex digits"),
        (f"{PATH}:bad tag", "not a valid tag"),
        (f"{REGION}-docker.pkg.dev/{PROJECT}/Repo/ingestion", "not a valid repository id"),
    ],
)
def test_bad_image_references_are_usage_errors(uri: str, match: str) -> None:
    # No emulator: a usage error must come before any API call.
    with pytest.raises(UsageError, match=match) as err:
        image.resolve_image(uri)
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_missing_image_is_refused(emulator: Emulator) -> None:
    with pytest.raises(NotFound, match=r"does not exist in Artifact Registry.*govctl deploy"):
        image.resolve_image(f"{PATH}:v1")
    image.ensure_repository(PROJECT, REGION)
    with pytest.raises(NotFound, match="does not exist"):
        image.resolve_image(f"{PATH}@sha256:{'0' * 64}")


# --- builds on the loopback cloud -------------------------------------------------------------


def test_cloud_build_end_to_end(emulator: Emulator, tmp_path: Path) -> None:
    root = checkout(tmp_path)
    account = build_account_for(PROJECT)
    lines: list[str] = []
    built = image.build_image(PROJECT, REGION, root=root, on_log=lines.append, account=account)
    data, info = image.source_bundle(root)
    digest = "sha256:" + info.sha256
    assert built == image.BuiltImage(
        f"{PATH}@{digest}", info.tag, head(root)[:12], digest, built.build_id
    )
    assert lines[0] == f"created Artifact Registry repository govreposcrape in {REGION}"
    assert any(line.startswith("uploaded 7 files") for line in lines)
    assert f'starting build "{built.build_id}"' in lines
    assert lines[-1] == "DONE"
    # The staged source is the bundle, named by its hash.
    blob = (
        clients.storage_client(PROJECT)
        .bucket(f"{PROJECT}_cloudbuild")
        .blob(f"source/{info.sha256}.tgz")
    )
    assert blob.download_as_bytes() == data
    # The image is in Artifact Registry with both tags; its tag resolves to the same digest.
    client = clients.artifact_registry()
    [img] = client.list_docker_images(parent=REPO)
    assert (img.uri, sorted(img.tags)) == (f"{PATH}@{digest}", sorted([info.tag, "latest"]))
    assert image.resolve_image(f"{PATH}:{info.tag}") == built.uri
    assert image.resolve_image(PATH) == built.uri  # latest
    assert image.resolve_image(built.uri) == built.uri
    # The same tree builds to the same digest, and the repository is not created again.
    again: list[str] = []
    rebuilt = image.build_image(
        PROJECT, REGION, root=root, on_log=again.append, reuse=False, account=account
    )
    assert rebuilt.digest == digest
    assert rebuilt.build_id not in (None, built.build_id)
    assert not any("created Artifact Registry" in line for line in again)


def test_an_image_of_the_same_source_is_reused(emulator: Emulator, tmp_path: Path) -> None:
    root = checkout(tmp_path)
    tag = image.source_bundle(root)[1].tag
    assert image.find_image(PROJECT, REGION, tag) is None  # no repository yet
    account = build_account_for(PROJECT)
    built = image.build_image(PROJECT, REGION, root=root, account=account)
    assert image.find_image(PROJECT, REGION, tag) == built.uri
    lines: list[str] = []
    reused = image.build_image(PROJECT, REGION, root=root, on_log=lines.append, account=account)
    assert reused == image.BuiltImage(built.uri, tag, built.commit, built.digest, None)
    assert lines == [f"{PATH}:{tag} is already built: {built.uri}"]
    builds = list(clients.cloud_build().list_builds(project_id=PROJECT))
    assert len(builds) == 1
    # A new commit is a new tag: it builds.
    (root / "ingestion" / "__main__.py").write_text("print('v2')\n")
    git("commit", "-qam", "v2", cwd=root)
    assert image.build_image(PROJECT, REGION, root=root, account=account).build_id is not None


def test_failed_build_raises_with_its_last_log_lines(emulator: Emulator) -> None:
    image.ensure_repository(PROJECT, REGION)
    staged = gcp_build.StagedSource(f"{PROJECT}_cloudbuild", "source/none.tgz", 0)
    clients.storage_client(PROJECT).create_bucket(staged.bucket)
    with pytest.raises(gcp_build.BuildFailed, match=r"ended FAILURE.*does not exist") as err:
        gcp_build.submit_build(
            PROJECT, staged, image=PATH, tags=["x"], account=build_account_for(PROJECT)
        )
    assert err.value.exit_code == 1
    assert any(line.startswith("ERROR: failed to fetch source") for line in err.value.log_tail)
    assert "| ERROR: failed to fetch source" in str(err.value)


def test_a_build_runs_as_its_account_with_its_log_in_cloud_logging(
    emulator: Emulator, tmp_path: Path
) -> None:
    root = checkout(tmp_path)
    account = build_account_for(PROJECT)
    built = image.build_image(PROJECT, REGION, root=root, account=account)
    build = clients.cloud_build().get_build(project_id=PROJECT, id=built.build_id)
    assert build.service_account == f"projects/{PROJECT}/serviceAccounts/{account}"
    assert build.options.logging == build.options.LoggingMode.CLOUD_LOGGING_ONLY


def test_without_an_account_a_new_project_cannot_push_and_is_told_why(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The project's default account (the Compute Engine one, on a project new to Cloud Build
    since 2024) holds no role: the build writes no log and fails to push."""
    root = checkout(tmp_path)
    lines: list[str] = []
    with pytest.raises(gcp_build.BuildFailed, match="ended FAILURE: error pushing image") as err:
        image.build_image(PROJECT, REGION, root=root, on_log=lines.append)
    assert "needs roles/artifactregistry.writer" in str(err.value)
    assert "govctl setup" in (err.value.fix or "")
    assert any(
        line.startswith("WARNING: The service account running this build does not have "
                        "permission to write logs") for line in lines
    )  # fmt: skip


def test_a_build_as_a_missing_account_is_refused_with_the_fix(emulator: Emulator) -> None:
    image.ensure_repository(PROJECT, REGION)
    staged = gcp_build.StagedSource(f"{PROJECT}_cloudbuild", "source/none.tgz", 0)
    missing = f"nobody@{PROJECT}.iam.gserviceaccount.com"
    with pytest.raises(CloudError, match="does not exist") as err:
        gcp_build.submit_build(PROJECT, staged, image=PATH, tags=["x"], account=missing)
    assert err.value.fix is not None and "govctl setup" in err.value.fix


def test_an_existing_repository_is_adopted(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    client.create_repository(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        repository_id="govreposcrape",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=5)
    assert image.ensure_repository(PROJECT, REGION) is False


# --- local builds (no registry here: the commands and the missing-engine error) ---------------


def test_local_build_commands(tmp_path: Path) -> None:
    cmds = image.local_build_commands("/usr/bin/podman", tmp_path, PATH, ["abc", "latest"])
    assert cmds == [
        [
            "/usr/bin/podman",
            "build",
            "-t",
            f"{PATH}:abc",
            "-t",
            f"{PATH}:latest",
            "-f",
            str(tmp_path / "ingestion/Dockerfile"),
            str(tmp_path),
        ],
        ["/usr/bin/podman", "push", f"{PATH}:abc"],
        ["/usr/bin/podman", "push", f"{PATH}:latest"],
    ]


def test_local_build_without_podman_or_docker(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = checkout(tmp_path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    (empty / "git").symlink_to(shutil.which("git") or "/usr/bin/git")  # keep git reachable
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GovctlError, match=r"neither was found.*--build cloud"):
        image.build_image(PROJECT, REGION, mode="local", root=root)
    # Refused before any change: no repository was created.
    assert list(clients.artifact_registry().list_repositories(parent=REPO.rsplit("/", 2)[0])) == []


def test_unknown_build_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="expected cloud or local"):
        image.build_image(PROJECT, REGION, mode="remote")  # type: ignore[arg-type]
