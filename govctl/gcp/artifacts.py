"""Artifact Registry: Docker repositories and image references.

``parse_image`` is pure (no Google import); the other functions call the
``artifactregistry_v1`` API through :mod:`govctl.gcp.clients`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, unquote

from govctl.errors import CloudError, NotFound, UsageError
from govctl.gcp import clients, operations
from govctl.gcp.errors import translate
from govctl.gcp.iam import Policy, policy_of

_HOST_RE = re.compile(r"(?P<location>[a-z]+(?:-[a-z0-9]+)+)-docker\.pkg\.dev")
_REPO_ID_RE = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
_IMAGE_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_FORM = "LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[:TAG|@sha256:DIGEST]"

ADMIN_FIX = "grant yourself roles/artifactregistry.admin on the project"
READER_FIX = "grant yourself roles/artifactregistry.reader on the repository"


@dataclass(frozen=True)
class ImageRef:
    """A Docker image in Artifact Registry, by tag or by digest (or by path alone)."""

    location: str
    project: str
    repository: str
    image: str
    tag: str | None = None
    digest: str | None = None

    @property
    def path(self) -> str:
        """``LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE``, without tag or digest."""
        return f"{self.location}-docker.pkg.dev/{self.project}/{self.repository}/{self.image}"

    @property
    def repository_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    @property
    def package_name(self) -> str:
        """The image's package: every digest and tag of it (a ``/`` in the image written
        ``%2F``, as ``Package.name`` says)."""
        return f"{self.repository_name}/packages/{quote(self.image, safe='')}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.path}@{self.digest}"
        return f"{self.path}:{self.tag}" if self.tag else self.path


@dataclass(frozen=True)
class Repository:
    name: str  # projects/P/locations/L/repositories/R
    location: str
    repository: str
    format: str  # DOCKER, MAVEN, ...
    registry_uri: str  # LOCATION-docker.pkg.dev/P/R
    create_time: datetime | None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    """One digest of an image in a repository, with its tags."""

    image: str  # the image name in the repository ("ingestion")
    digest: str  # sha256:…
    tags: tuple[str, ...]


def parse_image(uri: str) -> ImageRef:
    """Parse an Artifact Registry image reference; UsageError (exit 2) for any other form.

    Container Registry (``gcr.io``, ``*.gcr.io``) is refused: it is shut down.
    """
    text = uri.strip()
    host, _, rest = text.partition("/")
    if host == "gcr.io" or host.endswith(".gcr.io"):
        raise UsageError(
            f"image {uri!r}: Container Registry is shut down: use Artifact Registry "
            "REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE"
        )
    m = _HOST_RE.fullmatch(host)
    if not m or rest.count("/") < 2:
        raise UsageError(f"image {uri!r} is not an Artifact Registry image: expected {_FORM}")
    project, repository, image = rest.split("/", 2)
    tag = digest = None
    if "@" in image:
        image, _, digest = image.partition("@")
        if not _DIGEST_RE.fullmatch(digest):
            raise UsageError(
                f"image {uri!r}: digest {digest!r} is not sha256: followed by 64 hex digits"
            )
    elif ":" in image:
        image, _, tag = image.rpartition(":")
        if not _TAG_RE.fullmatch(tag):
            raise UsageError(f"image {uri!r}: {tag!r} is not a valid tag (expected {_FORM})")
    if not _REPO_ID_RE.fullmatch(repository):
        raise UsageError(
            f"image {uri!r}: repository {repository!r} is not a valid repository id "
            "(lowercase letters, digits, hyphens)"
        )
    if not _IMAGE_RE.fullmatch(image) or not project:
        raise UsageError(f"image {uri!r} is not an Artifact Registry image: expected {_FORM}")
    return ImageRef(m.group("location"), project, repository, image, tag, digest)


def get_repository(project: str, location: str, repository: str) -> Repository | None:
    """The repository, or None when it does not exist."""
    from google.api_core import exceptions as gexc

    client = clients.artifact_registry()
    name = f"projects/{project}/locations/{location}/repositories/{repository}"
    with translate(f"reading Artifact Registry repository {name}", denied=READER_FIX):
        try:
            return _repository(client.get_repository(name=name))
        except gexc.NotFound:
            return None


def create_repository(
    project: str, location: str, repository: str, *, description: str = ""
) -> Repository:
    """Create a Docker repository (standard mode) and wait for it."""
    from google.cloud import artifactregistry_v1 as ar

    client = clients.artifact_registry()
    parent = f"projects/{project}/locations/{location}"
    with translate(
        f"creating Artifact Registry repository {repository} in {location}",
        denied=ADMIN_FIX,
        not_found=f"run `govctl setup` (or `gcloud services enable "
        f"artifactregistry.googleapis.com --project {project}`)",
    ):
        op = client.create_repository(
            parent=parent,
            repository_id=repository,
            repository=ar.Repository(
                format_=ar.Repository.Format.DOCKER,
                description=description,
                labels={"managed-by": "govctl"},
            ),
        )
        return _repository(operations.result(op))


def list_images(project: str, location: str, repository: str) -> list[Image]:
    """Every digest in the repository (ListDockerImages), whatever its image name."""
    name = f"projects/{project}/locations/{location}/repositories/{repository}"
    found = []
    with translate(f"listing the images of {name}", denied=READER_FIX):
        for docker in clients.artifact_registry().list_docker_images(parent=name):
            # …/dockerImages/IMAGE@sha256:DIGEST, the image name URL-encoded
            image, _, digest = docker.name.rpartition("/dockerImages/")[2].rpartition("@")
            found.append(Image(unquote(image), digest, tuple(docker.tags)))
    return found


def delete_package(package_name: str) -> None:
    """Delete one image: its every digest and tag (DeletePackage: "Deletes a package and all
    of its versions and tags"), as `gcloud artifacts docker images delete PATH --delete-tags`
    does; wait for it. NotFound when it is gone already."""
    with translate(f"deleting image {unquote(package_name.rsplit('/', 1)[-1])}", denied=ADMIN_FIX):
        operations.result(clients.artifact_registry().delete_package(name=package_name))


def delete_repository(name: str) -> None:
    """Delete a repository "and all of its contents" (DeleteRepository), as `gcloud artifacts
    repositories delete` does; wait for it. NotFound when it is gone already."""
    with translate(f"deleting Artifact Registry repository {name}", denied=ADMIN_FIX):
        operations.result(clients.artifact_registry().delete_repository(name=name))


@dataclass(frozen=True)
class RepositoryPolicy:
    policy: Policy
    etag: bytes


def repository_policy(ref: ImageRef) -> RepositoryPolicy | None:
    """The IAM policy of the repository ``ref`` lives in; None when it does not exist."""
    from google.api_core import exceptions as gexc

    with translate(
        f"read the IAM policy of repository {ref.repository_name}",
        denied="reading it needs artifactregistry.repositories.getIamPolicy "
        "(roles/artifactregistry.repoAdmin) on the repository",
    ):
        try:
            pb = clients.artifact_registry().get_iam_policy(
                request={"resource": ref.repository_name}
            )
        except gexc.NotFound:
            return None
    return RepositoryPolicy(policy_of(pb), pb.etag)


def grant_on_repository(ref: ImageRef, role: str, member: str, etag: bytes | None) -> bool:
    """Grant ``role`` to ``member`` on this repository only, read-modify-write; refused when
    the policy changed since ``etag`` was read (None: the repository did not exist then).
    False when the member already held it."""
    client = clients.artifact_registry()
    what = f"grant {role} to {member} on repository {ref.repository_name}"
    denied = "granting it needs roles/artifactregistry.repoAdmin on the repository"
    with translate(what, denied=denied):
        pb = client.get_iam_policy(request={"resource": ref.repository_name})
    if etag is not None and pb.etag != etag:
        raise CloudError(f"{what}: the policy changed since the plan was made",
                         fix="rerun `govctl setup` to see the new state")  # fmt: skip
    for binding in pb.bindings:
        if binding.role == role and not binding.HasField("condition"):
            if member in binding.members:
                return False
            binding.members.append(member)
            break
    else:
        pb.bindings.add(role=role, members=[member])
    with translate(what, denied=denied):
        client.set_iam_policy(request={"resource": ref.repository_name, "policy": pb})
    return True


def revoke_on_repository(name: str, role: str, member: str) -> bool:
    """Remove ``member``'s ``role`` (or it, its account deleted since) on repository ``name``,
    read-modify-write with the etag just read (a change in between is ABORTED, never
    overwritten); False when it held none. NotFound when the repository is gone."""
    from govctl.gcp.iam import remove

    client = clients.artifact_registry()
    what = f"remove {role} from {member} on repository {name}"
    denied = "removing it needs roles/artifactregistry.repoAdmin on the repository"
    with translate(what, denied=denied):
        pb = client.get_iam_policy(request={"resource": name})
        if not remove(pb, role, member):
            return False
        client.set_iam_policy(request={"resource": name, "policy": pb})
    return True


def resolve_digest(ref: ImageRef) -> str:
    """The ``sha256:…`` digest ``ref`` names (its tag, ``latest`` without one, or its digest
    when it exists). NotFound with the fix when the image, tag or repository is missing."""
    from google.api_core import exceptions as gexc
    from google.cloud import artifactregistry_v1 as ar

    client = clients.artifact_registry()
    package = f"{ref.repository_name}/packages/{quote(ref.image, safe='')}"
    missing = NotFound(
        f"image {ref} does not exist in Artifact Registry",
        fix="build it with `govctl deploy --build cloud`, or pass an image that "
        f"`gcloud artifacts docker images list {ref.path} --include-tags` shows",
    )
    with translate(f"reading image {ref}", denied=READER_FIX):
        try:
            if ref.digest:
                name = (
                    f"{ref.repository_name}/dockerImages/{quote(ref.image, safe='')}@{ref.digest}"
                )
                client.get_docker_image(name=name)
                return ref.digest
            tag = client.get_tag(name=f"{package}/tags/{ref.tag or 'latest'}")
        except gexc.NotFound:
            raise missing from None
    digest = ar.ArtifactRegistryClient.parse_version_path(tag.version).get("version", "")
    if not _DIGEST_RE.fullmatch(digest):
        raise missing
    return digest


def _repository(repo: object) -> Repository:
    from google.cloud import artifactregistry_v1 as ar

    assert isinstance(repo, ar.Repository)
    _, project, _, location, _, repository = repo.name.split("/")
    created = repo.create_time
    return Repository(
        name=repo.name,
        location=location,
        repository=repository,
        format=ar.Repository.Format(repo.format_).name,
        registry_uri=repo.registry_uri or f"{location}-docker.pkg.dev/{project}/{repository}",
        create_time=created if isinstance(created, datetime) else None,
        labels=dict(repo.labels),
    )
