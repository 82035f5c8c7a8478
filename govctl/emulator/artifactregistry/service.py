"""Artifact Registry v1 (``google.devtools.artifactregistry.v1.ArtifactRegistry``), Docker only.

Repositories live in memory as ``artifactregistry_v1.Repository`` messages, images as
``DockerImage`` messages keyed by repository, package (the image name) and digest. Images are
never pushed here by a registry protocol: Cloud Build records them through the public contract
:meth:`ArtifactRegistryService.record_image`. A tag belongs to one image of a package at a time;
recording it on another digest moves it, as ``docker push`` does.
See docs/emulator/artifactregistry.md for the fidelity of every RPC.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote

from google.cloud import artifactregistry_v1 as ar
from google.protobuf import empty_pb2

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.artifactregistry import cleanup
from govctl.emulator.artifactregistry.policies import RepositoryPolicies
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.rpc import (
    Paging,
    already_exists,
    invalid_argument,
    matched,
    not_found,
    paged,
    refuse_filter,
)
from govctl.emulator.store import Store, masked_update
from govctl.emulator.ticker import Ticker

DockerImagePb: Any = ar.DockerImage.pb()

_PARENT_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)")
_REPO_RE = re.compile(r"projects/([^/]+)/locations/([^/]+)/repositories/([^/]+)")
# https://cloud.google.com/artifact-registry/docs/repositories/create-repos: lowercase letters,
# digits and hyphens, starting with a letter and not ending with a hyphen, at most 63.
_REPO_ID_RE = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# An image path in a Docker repository: REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE
_URI_RE = re.compile(r"([a-z0-9-]+)-docker\.pkg\.dev/([^/]+)/([^/]+)/([a-z0-9._/-]+)")
DOCKER_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
# What a push needs (roles/artifactregistry.writer has it; the denial Cloud Build's log shows
# names it, e.g. flutter/flutter#188342).
UPLOAD = "artifactregistry.repositories.uploadArtifacts"
# ListRepositoriesRequest.page_size: "Maximum page size is 1,000" (no default is documented:
# the emulator pages repositories and images 1000 at a time unless asked for fewer).
_PAGING = Paging(default=1000, maximum=1000)
# Fields UpdateRepository changes (the rest are output only, or fixed at creation: format,
# mode, kms_key_name, the mode's config).
_UPDATABLE = ("description", "labels", "cleanup_policies", "cleanup_policy_dry_run",
              "docker_config", "vulnerability_scanning_config")  # fmt: skip
# Docker's tag grammar (distribution/reference: [\w][\w.-]{0,127}).
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Google runs cleanup policies in a background job whose changes "take effect within about a
# day"; the emulator applies them after every change (a push, a tag, a policy) and, as the
# emulator's clock moves, once an hour of it (checked every CLEANUP_TICK real seconds).
CLEANUP_EVERY = timedelta(hours=1)
CLEANUP_TICK = 1.0


def _check_parent(parent: str) -> re.Match[str]:
    form = "projects/<PROJECT>/locations/<LOCATION>"
    return matched(_PARENT_RE, parent, f'Invalid parent {parent!r}: expected "{form}".')


def _check_repo_name(name: str) -> re.Match[str]:
    form = "projects/<PROJECT>/locations/<LOCATION>/repositories/<REPOSITORY>"
    return matched(_REPO_RE, name, f'Invalid repository name {name!r}: expected "{form}".')


class ArtifactRegistryService(Service):
    key = "artifactregistry"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._repos: Store[Any, ar.Repository] = Store(
            ar.Repository,
            missing="Requested entity was not found: repository {name}.",
            exists="the repository already exists: {name}",
        )
        # by image name: REPOSITORY/dockerImages/PACKAGE@sha256:DIGEST
        self._images: Store[Any, ar.DockerImage] = Store(
            ar.DockerImage,
            missing="Requested entity was not found: image {name}.",
        )
        self._ticker = Ticker("artifactregistry-cleanup", CLEANUP_TICK, self._tick)
        self._next_cleanup = self.cloud.clock.now() + CLEANUP_EVERY
        self.policies = RepositoryPolicies(self, _check_repo_name, self._repos.require)

    # public contract (see govctl/emulator/cloud.py) ------------------------------------------
    def record_image(
        self, image: str, digest: str, tags: list[str], size: int = 0
    ) -> ar.DockerImage:
        """Record ``REGION-docker.pkg.dev/P/R/IMAGE`` at ``digest`` (``sha256:…``) with ``tags``.

        Raises RpcError NOT_FOUND when the repository does not exist, INVALID_ARGUMENT for a
        path outside Artifact Registry's Docker hosts.
        """
        m = _URI_RE.fullmatch(image)
        if not m:
            raise invalid_argument(
                f"{image!r} is not an Artifact Registry image path "
                "(LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE)."
            )
        if not _DIGEST_RE.fullmatch(digest):
            raise invalid_argument(f"{digest!r} is not a sha256 digest.")
        location, project, repo_id, package = m.groups()
        repo_name = f"projects/{project}/locations/{location}/repositories/{repo_id}"
        name = f"{repo_name}/dockerImages/{quote(package, safe='')}@{digest}"
        now = self.cloud.clock.now()
        with self.lock:
            if repo_name not in self._repos:
                raise not_found(f"Repository {repo_name} not found.")
            for other in self._images.under(f"{repo_name}/dockerImages/{quote(package, safe='')}@"):
                if other.name != name:
                    kept = [t for t in other.tags if t not in tags]
                    del other.tags[:]
                    other.tags.extend(kept)
            pb = self._images.get(name)
            if pb is None:
                pb = DockerImagePb(
                    name=name,
                    uri=f"{image}@{digest}",
                    image_size_bytes=size,
                    media_type=DOCKER_MEDIA_TYPE,
                )
                pb.upload_time.FromDatetime(now)
                pb.build_time.FromDatetime(now)
                self._images.add(pb)
            pb.tags.extend(t for t in tags if t not in pb.tags)
            pb.update_time.FromDatetime(now)
            self.changed()
            out = self._images.out(pb)
            self._cleanup(repo_name)
            return out

    def run_cleanup(self) -> list[str]:
        """Apply every repository's cleanup policies now; the names of the images deleted.
        (Also done after each change and hourly by the emulator's clock.)"""
        with self.lock:
            return [name for repo in list(self._repos) for name in self._cleanup(repo.name)]

    def _cleanup(self, repo_name: str) -> list[str]:
        """Delete what the repository's policies select (nothing in a dry run). Lock held."""
        repo = self._repos.get(repo_name)
        if repo is None or repo.cleanup_policy_dry_run or not repo.cleanup_policies:
            return []
        images = self._images.under(f"{repo_name}/dockerImages/")
        doomed = cleanup.selected(repo.cleanup_policies, images, self.cloud.clock.now())
        for name in doomed:
            self._images.discard(name)
        if doomed:
            self.changed()
        return doomed

    def _tick(self) -> None:
        now = self.cloud.clock.now()
        if now >= self._next_cleanup:
            self._next_cleanup = now + CLEANUP_EVERY
            self.run_cleanup()

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def push_denied(self, image: str, member: str) -> str | None:
        """The repository of ``image`` (``L-docker.pkg.dev/P/R/IMAGE``) when it exists and
        ``member`` may not push to it; None otherwise (a missing repository is
        :meth:`record_image`'s NOT_FOUND)."""
        m = _URI_RE.fullmatch(image)
        if not m:
            return None
        location, project, repo_id, _ = m.groups()
        repository = f"projects/{project}/locations/{location}/repositories/{repo_id}"
        with self.lock:
            if repository not in self._repos:
                return None
        return None if self.may_push(repository, member) else repository

    def may_push(self, repository: str, member: str) -> bool:
        """Whether ``member`` holds ``artifactregistry.repositories.uploadArtifacts`` on the
        repository (``projects/P/locations/L/repositories/R``), through its policy or the
        project's. False for a missing repository."""
        with self.lock:
            if repository not in self._repos:
                return False
            policy = self.policies.current(repository)
        project = repository.split("/")[1]
        iam = self.cloud.service("iam")
        return any(iam.allows(p, member, UPLOAD) for p in (policy, iam.project_iam_policy(project)))

    # repositories -----------------------------------------------------------------------------
    def create_repository(self, request: ar.CreateRepositoryRequest, context: Any) -> Any:
        m = _check_parent(request.parent)
        if not _REPO_ID_RE.fullmatch(request.repository_id):
            raise invalid_argument(
                f"Invalid repository_id {request.repository_id!r}: use lowercase letters, digits "
                "and hyphens, starting with a letter, at most 63 characters."
            )
        repo = self._repos.stored(request.repository)
        if repo.format_ == ar.Repository.Format.FORMAT_UNSPECIFIED:
            raise invalid_argument("Repository format is required.")
        if repo.format_ != ar.Repository.Format.DOCKER:
            raise invalid_argument("The emulator serves DOCKER repositories only.")
        repo.name = f"{request.parent}/repositories/{request.repository_id}"
        if repo.mode == ar.Repository.Mode.MODE_UNSPECIFIED:
            repo.mode = ar.Repository.Mode.STANDARD_REPOSITORY
        now = self.cloud.clock.now()
        repo.create_time.FromDatetime(now)
        repo.update_time.FromDatetime(now)
        repo.registry_uri = f"{m.group(2)}-docker.pkg.dev/{m.group(1)}/{request.repository_id}"
        cleanup.validate(repo.cleanup_policies)
        with self.lock:
            self._repos.add(repo)
            self.changed()
            out = self._repo_out(repo)
        # Creating a repository takes a moment in production; here it is done at once.
        return _done(request.parent, out)

    def _repo(self, name: str) -> Any:
        _check_repo_name(name)
        return self._repos.require(name)

    def _repo_out(self, repo: Any) -> ar.Repository:
        """A copy to answer with; ``size_bytes`` is what its images hold (Google reports the
        repository's storage there, which is what Artifact Registry bills)."""
        out = self._repos.out(repo)
        images = self._images.under(repo.name + "/dockerImages/")
        out.size_bytes = sum(i.image_size_bytes for i in images)
        return out

    def get_repository(self, request: ar.GetRepositoryRequest, context: Any) -> Any:
        with self.lock:
            return self._repo_out(self._repo(request.name))

    def update_repository(self, request: ar.UpdateRepositoryRequest, context: Any) -> Any:
        patch = ar.Repository.pb(request.repository)
        mask = ar.UpdateRepositoryRequest.pb(request).update_mask
        with self.lock:
            current = self._repo(patch.name)
            updated = masked_update(current, patch, mask, _UPDATABLE)
            cleanup.validate(updated.cleanup_policies)
            updated.update_time.FromDatetime(self.cloud.clock.now())
            self._repos.put(updated)
            self.changed()
            self._cleanup(updated.name)
            return self._repo_out(updated)

    def list_repositories(self, request: ar.ListRepositoriesRequest, context: Any) -> Any:
        _check_parent(request.parent)
        refuse_filter(request.filter, "ListRepositories")
        with self.lock:
            found = self._repos.under(request.parent + "/repositories/")
            repos = [self._repo_out(r) for r in found]
        return _PAGING.respond(ar.ListRepositoriesResponse, "repositories", repos, request)

    def delete_repository(self, request: ar.DeleteRepositoryRequest, context: Any) -> Any:
        with self.lock:
            self._repo(request.name)
            self._repos.remove(request.name)
            self.policies.forget(request.name)
            for image in self._images.under(request.name + "/dockerImages/"):
                self._images.discard(image.name)
            self.changed()
        return _done(request.name.rsplit("/repositories/", 1)[0], empty_pb2.Empty())

    # images and tags --------------------------------------------------------------------------
    def list_docker_images(self, request: ar.ListDockerImagesRequest, context: Any) -> Any:
        with self.lock:
            self._repo(request.parent)
            images = self._images.copies(request.parent + "/dockerImages/")
        if request.order_by:
            field, _, direction = request.order_by.partition(" ")
            if field not in ("update_time", "upload_time", "build_time", "name"):
                raise invalid_argument(f"Unsupported order_by {request.order_by!r}.")
            reverse = direction.strip().lower() == "desc"
            images.sort(key=lambda i: getattr(i, field), reverse=reverse)
        return _PAGING.respond(ar.ListDockerImagesResponse, "docker_images", images, request)

    def get_docker_image(self, request: ar.GetDockerImageRequest, context: Any) -> Any:
        repo_name, sep, image = request.name.partition("/dockerImages/")
        if not sep or not image:
            raise invalid_argument(
                f"Invalid docker image name {request.name!r}: expected "
                '".../repositories/<REPOSITORY>/dockerImages/<IMAGE>@sha256:<DIGEST>".'
            )
        with self.lock:
            self._repo(repo_name)
            return self._images.out(self._images.require(request.name))

    def _package_images(self, package_name: str) -> tuple[str, list[Any]]:
        repo_name, sep, package = package_name.partition("/packages/")
        if not sep or not package or "/" in package:
            raise invalid_argument(
                f"Invalid package name {package_name!r}: expected "
                '".../repositories/<REPOSITORY>/packages/<PACKAGE>" (the image name, with / '
                "written %2F)."
            )
        self._repo(repo_name)
        prefix = f"{repo_name}/dockerImages/{quote(unquote(package), safe='')}@"
        images = self._images.under(prefix)
        if not images:
            raise not_found(f"Requested entity was not found: package {package_name}.")
        return package_name, images

    def get_package(self, request: ar.GetPackageRequest, context: Any) -> Any:
        """A Docker package is an image name; it exists while it has an image (a digest)."""
        with self.lock:
            package_name, images = self._package_images(request.name)
            return _package(package_name, images)

    def delete_package(self, request: ar.DeletePackageRequest, context: Any) -> Any:
        """Deletes a package and all of its versions and tags (service.proto, DeletePackage);
        `gcloud artifacts docker images delete PATH --delete-tags` without a digest."""
        with self.lock:
            package_name, images = self._package_images(request.name)
            for image in images:
                self._images.discard(image.name)
            self.changed()
        return _done(package_name.rsplit("/repositories/", 1)[0], empty_pb2.Empty())

    @staticmethod
    def _tag(package_name: str, tag: str, image: Any) -> ar.Tag:
        digest = image.name.rsplit("@", 1)[1]
        return ar.Tag(
            name=f"{package_name}/tags/{tag}", version=f"{package_name}/versions/{digest}"
        )

    def list_tags(self, request: ar.ListTagsRequest, context: Any) -> Any:
        refuse_filter(request.filter, "ListTags")
        with self.lock:
            package_name, images = self._package_images(request.parent)
            tags = sorted(
                (self._tag(package_name, t, pb) for pb in images for t in pb.tags),
                key=lambda t: t.name,
            )
        return paged(ar.ListTagsResponse, "tags", tags, request)

    def get_tag(self, request: ar.GetTagRequest, context: Any) -> Any:
        package_name, sep, tag = request.name.partition("/tags/")
        if not sep or not tag:
            raise invalid_argument(
                f'Invalid tag name {request.name!r}: expected ".../packages/<PACKAGE>/tags/<TAG>".'
            )
        with self.lock:
            package_name, images = self._package_images(package_name)
            for pb in images:
                if tag in pb.tags:
                    return self._tag(package_name, tag, pb)
        raise not_found(f"Requested entity was not found: tag {request.name}.")

    def _split_tag(self, name: str) -> tuple[str, str]:
        package_name, sep, tag = name.partition("/tags/")
        if not sep or not tag:
            raise invalid_argument(
                f'Invalid tag name {name!r}: expected ".../packages/<PACKAGE>/tags/<TAG>".'
            )
        return package_name, unquote(tag)

    def _version_image(self, package_name: str, images: list[Any], version: str) -> Any:
        digest = version.rpartition("/versions/")[2]
        if version.rpartition("/versions/")[0] != package_name:
            raise invalid_argument(
                f'Invalid version {version!r}: expected "{package_name}/versions/<DIGEST>".'
            )
        for pb in images:
            if pb.name.endswith(f"@{digest}"):
                return pb
        raise not_found(f"Requested entity was not found: version {version}.")

    def create_tag(self, request: ar.CreateTagRequest, context: Any) -> Any:
        if not _TAG_RE.fullmatch(request.tag_id):
            raise invalid_argument(
                f"Invalid tag_id {request.tag_id!r}: use letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-', at most 128 characters."
            )
        with self.lock:
            package_name, images = self._package_images(request.parent)
            if any(request.tag_id in pb.tags for pb in images):
                raise already_exists(f"the tag already exists: {request.parent}/tags/"
                                     f"{request.tag_id}")  # fmt: skip
            target = self._version_image(package_name, images, request.tag.version)
            target.tags.append(request.tag_id)
            self.changed()
            self._cleanup(package_name.partition("/packages/")[0])
            return self._tag(package_name, request.tag_id, target)

    def update_tag(self, request: ar.UpdateTagRequest, context: Any) -> Any:
        """Moves a tag to ``tag.version`` (the only field a tag has besides its name)."""
        package_name, tag = self._split_tag(request.tag.name)
        with self.lock:
            package_name, images = self._package_images(package_name)
            holder = next((pb for pb in images if tag in pb.tags), None)
            if holder is None:
                raise not_found(f"Requested entity was not found: tag {request.tag.name}.")
            target = self._version_image(package_name, images, request.tag.version)
            holder.tags.remove(tag)
            target.tags.append(tag)
            self.changed()
            self._cleanup(package_name.partition("/packages/")[0])
            return self._tag(package_name, tag, target)

    def delete_tag(self, request: ar.DeleteTagRequest, context: Any) -> Any:
        package_name, tag = self._split_tag(request.name)
        with self.lock:
            package_name, images = self._package_images(package_name)
            holder = next((pb for pb in images if tag in pb.tags), None)
            if holder is None:
                raise not_found(f"Requested entity was not found: tag {request.name}.")
            holder.tags.remove(tag)
            self.changed()
            self._cleanup(package_name.partition("/packages/")[0])
        return empty_pb2.Empty()

    # gRPC, persistence ------------------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        api = gapic_api("google.cloud.artifactregistry_v1.services.artifact_registry")
        return [
            api.bind(
                {
                    "CreateRepository": self.create_repository,
                    "GetRepository": self.get_repository,
                    "UpdateRepository": self.update_repository,
                    "ListRepositories": self.list_repositories,
                    "DeleteRepository": self.delete_repository,
                    "ListDockerImages": self.list_docker_images,
                    "GetDockerImage": self.get_docker_image,
                    "ListTags": self.list_tags,
                    "GetTag": self.get_tag,
                    "CreateTag": self.create_tag,
                    "UpdateTag": self.update_tag,
                    "DeleteTag": self.delete_tag,
                    "GetPackage": self.get_package,
                    "DeletePackage": self.delete_package,
                    **self.policies.handlers(),
                }
            )
        ]

    def dump(self) -> Any:
        return {
            "repositories": self._repos.dump(),
            "images": self._images.dump(),
            "policies": self.policies.dump(),
        }

    def load(self, data: Any) -> None:
        data = data or {}
        self._repos.load(data.get("repositories", []))
        self._images.load(data.get("images", []))
        self.policies.load(data.get("policies", {}))


def _package(package_name: str, images: list[Any]) -> ar.Package:
    """The package of ``images`` (one image name): created with its first image, updated with
    its last."""
    package = ar.Package(name=package_name, display_name=unquote(package_name.rsplit("/", 1)[1]))
    pb = ar.Package.pb(package)
    pb.create_time.CopyFrom(min((i.upload_time for i in images), key=lambda t: t.ToNanoseconds()))
    pb.update_time.CopyFrom(max((i.update_time for i in images), key=lambda t: t.ToNanoseconds()))
    return package


def _done(parent: str, response: Any) -> Any:
    """The finished operation Artifact Registry's repository changes answer with here."""
    return rpc.operation(f"{parent}/operations/{uuid.uuid4()}", ar.OperationMetadata(), response)
