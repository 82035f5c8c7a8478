"""The test servers themselves work (everything else builds on them)."""

import subprocess
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from govctl.emulator.storage import FakeGcs
from tests.support.git import GitServer, head, make_repo


def test_git_server_serves_and_counts_clones(git_server: GitServer, tmp_path: Path) -> None:
    repo = make_repo(git_server.root / "org" / "one", {"README.md": "hello\n"})
    out = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", git_server.url("org/one"), str(out)], check=True)
    assert (out / "README.md").read_text() == "hello\n"
    assert head(out) == head(repo)
    assert git_server.upload_packs() == 1
    assert git_server.upload_packs("org/one") == 1


def test_fake_gcs_round_trip(fake_gcs: FakeGcs) -> None:
    client = storage.Client(project="p", credentials=AnonymousCredentials())
    bucket = client.create_bucket("test-bucket")
    blob = bucket.blob("x/y.md")
    blob.metadata = {"pushedAt": "2024-01-01T00:00:00Z"}
    blob.upload_from_string("hi", content_type="text/markdown; charset=utf-8")
    [listed] = list(client.list_blobs("test-bucket"))
    assert listed.metadata == {"pushedAt": "2024-01-01T00:00:00Z"}
