"""Cleanup policies and tags of the emulated Artifact Registry, through the official client.

Google's rules (cleanup-policy-overview, repository.proto): a DELETE policy selects versions, a
KEEP policy (a condition, or the most recent versions) exempts them and wins; at most 10
policies; a dry run deletes nothing.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar
from google.protobuf import duration_pb2, field_mask_pb2

from govctl.emulator.server import Emulator
from govctl.gcp import clients

PROJECT = "demo-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
REPO = f"{PARENT}/repositories/govreposcrape"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
PACKAGE = f"{REPO}/packages/ingestion"
DAY = 86400
Action = ar.CleanupPolicy.Action
TagState = ar.CleanupPolicyCondition.TagState


def digest(i: int) -> str:
    return f"sha256:{i:064x}"


def policies(keep: int = 2, older_than_days: int = 30) -> dict[str, ar.CleanupPolicy]:
    return {
        "delete-old": ar.CleanupPolicy(
            id="delete-old",
            action=Action.DELETE,
            condition=ar.CleanupPolicyCondition(
                tag_state=TagState.ANY,
                older_than=duration_pb2.Duration(seconds=older_than_days * DAY),
            ),
        ),
        "keep-recent": ar.CleanupPolicy(
            id="keep-recent",
            action=Action.KEEP,
            most_recent_versions=ar.CleanupPolicyMostRecentVersions(keep_count=keep),
        ),
        "keep-deployed": ar.CleanupPolicy(
            id="keep-deployed",
            action=Action.KEEP,
            condition=ar.CleanupPolicyCondition(
                tag_state=TagState.TAGGED, tag_prefixes=["deployed-"]
            ),
        ),
    }


def create_repo(client: ar.ArtifactRegistryClient, **fields: object) -> ar.Repository:
    repo = ar.Repository(format_=ar.Repository.Format.DOCKER, **fields)
    op = client.create_repository(parent=PARENT, repository_id="govreposcrape", repository=repo)
    return op.result(timeout=5)


def push_five(emulator: Emulator) -> None:
    """Five images a day apart, 1 oldest; each 100 bytes."""
    registry = emulator.service("artifactregistry")
    for i in range(1, 6):
        registry.record_image(IMAGE, digest(i), [f"c{i}"], 100)
        emulator.cloud.clock.advance(timedelta(days=1))


def digests(client: ar.ArtifactRegistryClient) -> list[str]:
    return sorted(i.name.rsplit("@", 1)[1] for i in client.list_docker_images(parent=REPO))


def test_delete_policy_removes_old_versions_keep_policies_win(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    create_repo(client, cleanup_policies=policies(keep=2))
    push_five(emulator)
    # The job runs image 1, tagged when it was deployed: a keep policy holds it.
    client.create_tag(
        parent=PACKAGE,
        tag_id="deployed-govreposcrape-ingestion",
        tag=ar.Tag(version=f"{PACKAGE}/versions/{digest(1)}"),
    )
    assert emulator.service("artifactregistry").run_cleanup() == []  # all younger than 30 days
    emulator.cloud.clock.advance(timedelta(days=40))
    deleted = emulator.service("artifactregistry").run_cleanup()
    assert [d.rsplit("@", 1)[1] for d in deleted] == [digest(2), digest(3)]
    assert digests(client) == [digest(1), digest(4), digest(5)]
    got = client.get_repository(name=REPO)
    assert set(got.cleanup_policies) == {"delete-old", "keep-recent", "keep-deployed"}
    assert got.size_bytes == 300


def test_dry_run_deletes_nothing(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    create_repo(client, cleanup_policies=policies(keep=1), cleanup_policy_dry_run=True)
    push_five(emulator)
    emulator.cloud.clock.advance(timedelta(days=40))
    assert emulator.service("artifactregistry").run_cleanup() == []
    assert len(digests(client)) == 5


def test_policies_apply_as_the_clock_moves(emulator: Emulator) -> None:
    """No call needed: the background pass runs once an hour of the emulator's clock."""
    client = clients.artifact_registry()
    create_repo(client, cleanup_policies=policies(keep=1))
    push_five(emulator)
    emulator.cloud.clock.advance(timedelta(days=40))
    deadline = time.monotonic() + 10
    while len(digests(client)) > 1:
        assert time.monotonic() < deadline, digests(client)
        time.sleep(0.1)
    assert digests(client) == [digest(5)]


def test_update_repository_sets_policies_and_applies_them(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    create_repo(client, description="images")
    push_five(emulator)
    emulator.cloud.clock.advance(timedelta(days=40))
    assert len(digests(client)) == 5  # no policy yet
    updated = client.update_repository(
        repository=ar.Repository(name=REPO, cleanup_policies=policies(keep=3)),
        update_mask=field_mask_pb2.FieldMask(paths=["cleanup_policies"]),
    )
    assert set(updated.cleanup_policies) == {"delete-old", "keep-recent", "keep-deployed"}
    assert updated.description == "images"  # not in the mask: kept
    assert digests(client) == [digest(3), digest(4), digest(5)]
    with pytest.raises(exceptions.InvalidArgument, match="cannot be updated"):
        client.update_repository(
            repository=ar.Repository(name=REPO, mode=ar.Repository.Mode.REMOTE_REPOSITORY),
            update_mask=field_mask_pb2.FieldMask(paths=["mode"]),
        )


def test_documented_limits_are_refused(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    eleven = {
        f"p{i}": ar.CleanupPolicy(
            id=f"p{i}", action=Action.KEEP, condition=ar.CleanupPolicyCondition()
        )
        for i in range(11)
    }
    with pytest.raises(exceptions.InvalidArgument, match="at most 10"):
        create_repo(client, cleanup_policies=eleven)
    recent_delete = {
        "x": ar.CleanupPolicy(
            id="x",
            action=Action.DELETE,
            most_recent_versions=ar.CleanupPolicyMostRecentVersions(keep_count=2),
        )
    }
    with pytest.raises(exceptions.InvalidArgument, match="KEEP"):
        create_repo(client, cleanup_policies=recent_delete)
    with pytest.raises(exceptions.InvalidArgument, match="cleanup policy id"):
        create_repo(client, cleanup_policies={"a" * 128: ar.CleanupPolicy(action=Action.KEEP)})


def test_tags_are_created_moved_and_deleted(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    create_repo(client)
    push_five(emulator)
    tag = f"{PACKAGE}/tags/deployed-job"
    made = client.create_tag(
        parent=PACKAGE, tag_id="deployed-job", tag=ar.Tag(version=f"{PACKAGE}/versions/{digest(2)}")
    )
    assert made.name == tag
    assert made.version == f"{PACKAGE}/versions/{digest(2)}"
    with pytest.raises(exceptions.AlreadyExists):
        client.create_tag(
            parent=PACKAGE, tag_id="deployed-job",
            tag=ar.Tag(version=f"{PACKAGE}/versions/{digest(3)}"),
        )  # fmt: skip
    moved = client.update_tag(
        tag=ar.Tag(name=tag, version=f"{PACKAGE}/versions/{digest(4)}"),
        update_mask=field_mask_pb2.FieldMask(paths=["version"]),
    )
    assert moved.version.endswith(digest(4))
    assert client.get_tag(name=tag).version.endswith(digest(4))
    with pytest.raises(exceptions.NotFound):
        client.create_tag(
            parent=PACKAGE, tag_id="x", tag=ar.Tag(version=f"{PACKAGE}/versions/{digest(9)}")
        )
    with pytest.raises(exceptions.InvalidArgument, match="tag_id"):
        client.create_tag(
            parent=PACKAGE, tag_id="-bad", tag=ar.Tag(version=f"{PACKAGE}/versions/{digest(1)}")
        )
    client.delete_tag(name=tag)
    with pytest.raises(exceptions.NotFound):
        client.get_tag(name=tag)


def test_policies_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        create_repo(clients.artifact_registry(), cleanup_policies=policies())
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        got = clients.artifact_registry().get_repository(name=REPO)
        assert got.cleanup_policies["keep-recent"].most_recent_versions.keep_count == 2
