"""Conformance of the emulated Artifact Registry v1, driven through the official client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar

from govctl.emulator.rpc import RpcError
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.support.cloud import service_account

PROJECT = "demo-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
REPO = f"{PARENT}/repositories/govreposcrape"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def create_repo(client: ar.ArtifactRegistryClient, repo_id: str = "govreposcrape") -> ar.Repository:
    op = client.create_repository(
        parent=PARENT,
        repository_id=repo_id,
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER, description="images"),
    )
    return op.result(timeout=5)


def ar_policy(client: ar.ArtifactRegistryClient) -> Any:
    return client.get_iam_policy(request={"resource": REPO})


def test_create_get_list_repository(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    repo = create_repo(client)
    assert repo.name == REPO
    assert repo.format_ == ar.Repository.Format.DOCKER
    assert repo.mode == ar.Repository.Mode.STANDARD_REPOSITORY
    assert repo.registry_uri == f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape"
    assert client.get_repository(name=REPO).description == "images"
    create_repo(client, "other")
    names = [r.name for r in client.list_repositories(parent=PARENT)]
    assert names == [f"{PARENT}/repositories/govreposcrape", f"{PARENT}/repositories/other"]
    assert list(client.list_repositories(parent=f"projects/{PROJECT}/locations/us-east1")) == []


def test_repository_errors(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    with pytest.raises(exceptions.NotFound):
        client.get_repository(name=REPO)
    create_repo(client)
    with pytest.raises(exceptions.AlreadyExists):
        create_repo(client)
    for bad in ("Upper", "9starts-with-digit", "ends-with-", "a" * 64):
        with pytest.raises(exceptions.InvalidArgument, match="repository_id"):
            create_repo(client, bad)
    with pytest.raises(exceptions.InvalidArgument, match="format"):
        client.create_repository(parent=PARENT, repository_id="nofmt", repository=ar.Repository())
    with pytest.raises(exceptions.InvalidArgument, match="repository name"):
        client.get_repository(name="projects/p/repositories/x")


def test_recorded_images_tags_and_digests(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    registry = emulator.service("artifactregistry")
    with pytest.raises(RpcError, match="not found"):
        registry.record_image(IMAGE, D1, ["v1"])
    create_repo(client)
    registry.record_image(IMAGE, D1, ["v1", "latest"], 123)
    registry.record_image(IMAGE, D2, ["v2", "latest"], 456)
    images = {i.uri: list(i.tags) for i in client.list_docker_images(parent=REPO)}
    # "latest" moved to the newer digest, as a push moves a tag.
    assert images == {f"{IMAGE}@{D1}": ["v1"], f"{IMAGE}@{D2}": ["v2", "latest"]}
    got = client.get_docker_image(name=f"{REPO}/dockerImages/ingestion@{D2}")
    assert got.image_size_bytes == 456
    assert got.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    package = f"{REPO}/packages/ingestion"
    tag = client.get_tag(name=f"{package}/tags/latest")
    assert tag.version == f"{package}/versions/{D2}"
    assert [t.name.rsplit("/", 1)[1] for t in client.list_tags(parent=package)] == [
        "latest",
        "v1",
        "v2",
    ]
    with pytest.raises(exceptions.NotFound):
        client.get_tag(name=f"{package}/tags/nope")
    with pytest.raises(exceptions.NotFound):
        client.get_docker_image(name=f"{REPO}/dockerImages/ingestion@sha256:{'3' * 64}")
    with pytest.raises(exceptions.NotFound):
        client.get_tag(name=f"{REPO}/packages/other/tags/latest")


def test_repositories_and_images_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        create_repo(clients.artifact_registry())
        emu.service("artifactregistry").record_image(IMAGE, D1, ["v1"])
        policy = ar_policy(clients.artifact_registry())
        policy.bindings.add(role="roles/artifactregistry.reader", members=["user:a@example.org"])
        clients.artifact_registry().set_iam_policy(request={"resource": REPO, "policy": policy})
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        client = clients.artifact_registry()
        assert client.get_repository(name=REPO).name == REPO
        assert [list(i.tags) for i in client.list_docker_images(parent=REPO)] == [["v1"]]
        assert [b.role for b in ar_policy(client).bindings] == ["roles/artifactregistry.reader"]


def test_delete_package_takes_every_digest_and_tag_of_one_image(emulator: Emulator) -> None:
    """DeletePackage: "Deletes a package and all of its versions and tags" (googleapis,
    google/devtools/artifactregistry/v1/service.proto); another image of the repository stays,
    and a package already gone is NOT_FOUND."""
    client = clients.artifact_registry()
    registry = emulator.service("artifactregistry")
    create_repo(client)
    registry.record_image(IMAGE, D1, ["v1"])
    registry.record_image(IMAGE, D2, ["v2", "latest"])
    registry.record_image(f"{IMAGE}-other", D1, ["keep"])
    package = f"{REPO}/packages/ingestion"
    got = client.get_package(name=package)
    assert (got.name, got.display_name) == (package, "ingestion")
    assert got.create_time <= got.update_time
    client.delete_package(name=package).result(timeout=5)
    assert [i.uri for i in client.list_docker_images(parent=REPO)] == [f"{IMAGE}-other@{D1}"]
    for call in (client.get_package, client.delete_package):
        with pytest.raises(exceptions.NotFound):
            call(name=package)
    with pytest.raises(exceptions.NotFound):
        client.get_tag(name=f"{package}/tags/latest")
    assert client.get_repository(name=REPO).name == REPO


def test_a_slash_in_an_image_name_is_escaped_in_its_package_name(emulator: Emulator) -> None:
    client = clients.artifact_registry()
    create_repo(client)
    emulator.service("artifactregistry").record_image(f"{IMAGE}/job", D1, ["v1"])
    package = f"{REPO}/packages/ingestion%2Fjob"
    assert client.get_package(name=package).display_name == "ingestion/job"
    client.delete_package(name=package).result(timeout=5)
    assert list(client.list_docker_images(parent=REPO)) == []


WRITER = "roles/artifactregistry.writer"
BUILDER = f"serviceAccount:builder@{PROJECT}.iam.gserviceaccount.com"


def test_repository_iam_policy_read_modify_write(emulator: Emulator) -> None:
    service_account(PROJECT, "builder")
    client = clients.artifact_registry()
    create_repo(client)
    registry = emulator.service("artifactregistry")
    assert not registry.may_push(REPO, BUILDER)
    policy = client.get_iam_policy(request={"resource": REPO})
    assert list(policy.bindings) == [] and policy.etag
    policy.bindings.add(role=WRITER, members=[BUILDER])
    stored = client.set_iam_policy(request={"resource": REPO, "policy": policy})
    assert [(b.role, list(b.members)) for b in stored.bindings] == [(WRITER, [BUILDER])]
    assert registry.may_push(REPO, BUILDER)
    # A write with the etag read before is refused: someone changed the policy meanwhile.
    with pytest.raises(exceptions.Aborted):
        client.set_iam_policy(request={"resource": REPO, "policy": policy})
    # Removing the last member drops the binding (as Resource Manager does).
    stored.bindings[0].members.remove(BUILDER)
    emptied = client.set_iam_policy(request={"resource": REPO, "policy": stored})
    assert list(emptied.bindings) == []
    assert not registry.may_push(REPO, BUILDER)
    held = client.test_iam_permissions(
        request={"resource": REPO, "permissions": ["artifactregistry.repositories.get"]}
    )
    assert list(held.permissions) == ["artifactregistry.repositories.get"]


def test_a_project_grant_also_allows_a_push(emulator: Emulator) -> None:
    service_account(PROJECT, "builder")
    create_repo(clients.artifact_registry())
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    policy.bindings.add(role=WRITER, members=[BUILDER])
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})
    assert emulator.service("artifactregistry").may_push(REPO, BUILDER)


def test_repository_iam_errors(emulator: Emulator) -> None:
    service_account(PROJECT, "builder")
    client = clients.artifact_registry()
    with pytest.raises(exceptions.NotFound):
        client.get_iam_policy(request={"resource": REPO})
    with pytest.raises(exceptions.InvalidArgument):
        client.get_iam_policy(request={"resource": "projects/p/repositories/x"})
    create_repo(client)
    for bad in ({"role": "roles/artifactregistry.writter", "members": [BUILDER]},
                {"role": WRITER, "members": ["builder"]}):  # fmt: skip
        policy = client.get_iam_policy(request={"resource": REPO})
        policy.bindings.add(**bad)
        with pytest.raises(exceptions.InvalidArgument):
            client.set_iam_policy(request={"resource": REPO, "policy": policy})
    # Deleting the repository deletes its policy: a new one of that name starts empty.
    policy = client.get_iam_policy(request={"resource": REPO})
    policy.bindings.add(role=WRITER, members=[BUILDER])
    client.set_iam_policy(request={"resource": REPO, "policy": policy})
    client.delete_repository(name=REPO).result(timeout=5)
    create_repo(client)
    assert list(client.get_iam_policy(request={"resource": REPO}).bindings) == []
