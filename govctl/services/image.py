"""The job's image: bundle the source, build it (Cloud Build or locally), resolve references.

The build context is the directory holding the ``ingestion`` package, restricted to
``ingestion/**`` (with ``ingestion/Dockerfile`` and its dependency lock) and honouring a
``.dockerignore`` there the way docker does. From a git checkout the image is tagged with the
commit, from an installed wheel with the package version, and always ``latest``; callers pin the
job to the digest. Google libraries are reached only through :mod:`govctl.gcp`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from govctl.errors import GovctlError, NotFound, UsageError
from govctl.gcp import artifacts, build

DEFAULT_REPOSITORY = "govreposcrape"
DEFAULT_IMAGE = "ingestion"
PACKAGE = "ingestion"
DOCKERFILE = "ingestion/Dockerfile"
DOCKERIGNORE = ".dockerignore"
# Never part of an image, whatever .dockerignore says.
_ALWAYS_SKIPPED = ("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Every entry gets these, so the same files give the same bytes on any machine, any day.
_MTIME = 0
_TAG_RE = re.compile(r"[^A-Za-z0-9_.-]")

BuildMode = Literal["cloud", "local"]
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class BundleInfo:
    root: Path  # the directory holding the ``ingestion`` package
    files: int
    size: int  # bytes of the gzip tarball
    sha256: str  # hex digest of the tarball
    tag: str  # the commit (short sha), or the package version when not from git
    commit: str | None  # short sha when bundled from a git checkout
    dirty: bool  # uncommitted changes under the bundled paths (only with allow_dirty)


@dataclass(frozen=True)
class BuiltImage:
    uri: str  # LOCATION-docker.pkg.dev/P/R/IMAGE@sha256:… (what the job is pinned to)
    tag: str
    commit: str | None
    digest: str  # sha256:…
    build_id: str | None = None  # the Cloud Build id (cloud mode)


def default_image_path(
    project: str, region: str, repository: str = DEFAULT_REPOSITORY, image: str = DEFAULT_IMAGE
) -> str:
    return f"{region}-docker.pkg.dev/{project}/{repository}/{image}"


def package_root() -> Path:
    """The directory holding the importable ``ingestion`` package (checkout or site-packages)."""
    import ingestion

    return Path(ingestion.__file__).resolve().parent.parent


# --- the source bundle ----------------------------------------------------------------------


class _DockerIgnore:
    """``.dockerignore`` decisions as docker makes them (moby/patternmatcher): patterns are
    relative to the context root, a pattern matching a parent directory matches everything
    below it, and the last matching pattern wins. Globs are pathspec's; each pattern is
    anchored at the root because, unlike ``.gitignore``, ``*.pyc`` means the root only."""

    def __init__(self, lines: list[str]) -> None:
        from pathspec import PathSpec

        anchored = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            body = line[1:].strip() if negate else line
            body = body.removeprefix("./").lstrip("/")
            if body:
                anchored.append(("!" if negate else "") + "/" + body)
        self._patterns = [p for p in PathSpec.from_lines("gitignore", anchored).patterns]

    def ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        candidates = [rel] + ["/".join(parts[:i]) + "/" for i in range(1, len(parts))]
        verdict = False
        for pattern in self._patterns:
            if pattern.include is None:
                continue
            if any(pattern.match_file(c) is not None for c in candidates):
                verdict = bool(pattern.include)
        return verdict


def _bundled_files(root: Path) -> list[str]:
    """Relative POSIX paths of the context, sorted; directories are implied."""
    ignore_file = root / DOCKERIGNORE
    ignore = (
        _DockerIgnore(ignore_file.read_text(encoding="utf-8").splitlines())
        if ignore_file.is_file()
        else None
    )
    if not (root / PACKAGE / "__init__.py").is_file():
        raise GovctlError(
            f"no {PACKAGE} package in {root}",
            fix="run govctl from a checkout of the project or an installed govctl",
        )
    out = []
    for dirpath, dirnames, filenames in os.walk(root / PACKAGE):
        dirnames[:] = sorted(d for d in dirnames if d not in _ALWAYS_SKIPPED)
        for name in filenames:
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            rel = Path(dirpath, name).relative_to(root).as_posix()
            # docker sends the Dockerfile even when .dockerignore names it.
            if ignore is not None and ignore.ignored(rel) and rel != DOCKERFILE:
                continue
            out.append(rel)
    if ignore_file.is_file():
        out.append(DOCKERIGNORE)
    if DOCKERFILE not in out:
        raise GovctlError(
            f"no {DOCKERFILE} in {root}", fix="the image is built from ingestion/Dockerfile"
        )
    return sorted(out)


def _tar_entries(root: Path, files: list[str]) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    seen_dirs: set[str] = set()
    for rel in files:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in seen_dirs:
                seen_dirs.add(d)
                yield _info(d, tarfile.DIRTYPE, 0o755), None
        path = root / rel
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            info = _info(rel, tarfile.SYMTYPE, 0o777)
            info.linkname = os.readlink(path)
            yield info, None
            continue
        data = path.read_bytes()
        info = _info(rel, tarfile.REGTYPE, 0o755 if st.st_mode & 0o111 else 0o644)
        info.size = len(data)
        yield info, data


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _git(root: Path, *args: str) -> str | None:
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def _git_state(root: Path, files: list[str]) -> tuple[str | None, bool]:
    """(short commit, dirty) when ``root``'s ingestion package is tracked by git, else (None,
    False): a wheel in a virtualenv inside some checkout is not that checkout's source."""
    if _git(root, "ls-files", "--error-unmatch", "--", f"{PACKAGE}/__init__.py") is None:
        return None, False
    commit = (_git(root, "rev-parse", "--short=12", "HEAD") or "").strip() or None
    prefix = (_git(root, "rev-parse", "--show-prefix") or "").strip()
    status = _git(
        root, "status", "--porcelain", "--untracked-files=all", "--", PACKAGE, DOCKERIGNORE
    )
    bundled = set(files)
    dirty = False
    for line in (status or "").splitlines():
        # "XY path" or "XY old -> new"; paths are relative to the repository's top.
        path = line[3:].split(" -> ")[-1].strip().strip('"').removeprefix(prefix)
        # A tracked change (even a deletion) counts; an untracked file only if it is bundled.
        if not line.startswith("??") or path in bundled:
            dirty = True
    return commit, dirty


def _version_tag() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        raw = version("govctl")
    except PackageNotFoundError:
        raw = "0.0.0"
    return "v" + _TAG_RE.sub("-", raw)


def source_bundle(
    root: Path | None = None, *, allow_dirty: bool = False
) -> tuple[bytes, BundleInfo]:
    """The build context as a deterministic gzip tarball: same files, same bytes.

    Entries are sorted, with mtime 0, uid/gid 0, no user names, modes 0644/0755; the gzip
    header carries no time or name. From a git checkout, a tree with uncommitted changes under
    the bundled paths is refused (UsageError) unless ``allow_dirty``.
    """
    root = (root or package_root()).resolve()
    files = _bundled_files(root)
    commit, dirty = _git_state(root, files)
    if dirty and not allow_dirty:
        raise UsageError(
            f"the source in {root} has uncommitted changes under {PACKAGE}/: commit them, or "
            "pass --allow-dirty to build them anyway"
        )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry, content in _tar_entries(root, files):
            tar.addfile(entry, io.BytesIO(content) if content is not None else None)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    data = out.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    if commit is None:
        tag = _version_tag()
    elif dirty:
        tag = f"{commit}-dirty-{sha[:8]}"
    else:
        tag = commit
    info = BundleInfo(root, len(files), len(data), sha, tag, commit, dirty)
    return data, info


# --- building -------------------------------------------------------------------------------


def ensure_repository(project: str, region: str, repository: str = DEFAULT_REPOSITORY) -> bool:
    """Make sure the Docker repository exists; True when it was created now."""
    repo = artifacts.get_repository(project, region, repository)
    if repo is not None:
        if repo.format != "DOCKER":
            raise GovctlError(
                f"Artifact Registry repository {repo.name} holds {repo.format}, not Docker images",
                fix="set [job] image to a path in a Docker repository",
            )
        return False
    artifacts.create_repository(
        project, region, repository, description="govreposcrape ingestion images (govctl)"
    )
    return True


def build_image(
    project: str,
    region: str,
    *,
    repository: str = DEFAULT_REPOSITORY,
    image: str = DEFAULT_IMAGE,
    mode: BuildMode = "cloud",
    allow_dirty: bool = False,
    on_log: LogFn | None = None,
    root: Path | None = None,
    reuse: bool = True,
    account: str | None = None,
) -> BuiltImage:
    """Build the bundled job's image, push it as ``:TAG`` and ``:latest``, return its digest.

    ``cloud``: upload the bundle to ``gs://PROJECT_cloudbuild/source/SHA.tgz`` and run Cloud
    Build as the service account ``account`` (``[build] service_account``; None: the
    project's default, which since 2024 may not push or log); ``local``: podman (or docker)
    build and push. The Artifact Registry repository is created first when missing. With
    ``reuse``, an image already tagged with this source's tag (the commit, the version, or
    ``COMMIT-dirty-HASH``) is returned without building: docker builds are not reproducible,
    so a rebuild would change the digest and make an unchanged redeploy look like a change.
    ``build_id`` is then None.
    """
    if mode not in ("cloud", "local"):
        raise UsageError(f"--build {mode!r}: expected cloud or local")
    path = default_image_path(project, region, repository, image)
    artifacts.parse_image(path)  # a bad project/region/name fails here, before any call
    data, info = source_bundle(root, allow_dirty=allow_dirty)
    emit = on_log or (lambda _line: None)
    if reuse:
        found = find_image(project, region, info.tag, repository=repository, image=image)
        if found is not None:
            emit(f"{path}:{info.tag} is already built: {found}")
            return BuiltImage(
                found, info.tag, info.commit, artifacts.parse_image(found).digest or ""
            )
    engine = container_engine() if mode == "local" else ""  # before any change
    if ensure_repository(project, region, repository):
        emit(f"created Artifact Registry repository {repository} in {region}")
    tags = [info.tag, "latest"]
    if mode == "cloud":
        staged = build.upload_source(project, data, info.sha256)
        emit(f"uploaded {info.files} files ({info.size} bytes) to {staged}")
        result = build.submit_build(
            project, staged, image=path, tags=tags, on_log=emit, account=account
        )
        digest, build_id = result.digest, result.id
    else:
        digest, build_id = _local_build(engine, data, path, tags, emit), None
    return BuiltImage(f"{path}@{digest}", info.tag, info.commit, digest, build_id)


def find_image(
    project: str,
    region: str,
    tag: str,
    *,
    repository: str = DEFAULT_REPOSITORY,
    image: str = DEFAULT_IMAGE,
) -> str | None:
    """``PATH@sha256:…`` of the image tagged ``tag``, or None (also without the repository).
    Read-only: what a dry run uses to tell a build from a reuse."""
    ref = artifacts.parse_image(f"{default_image_path(project, region, repository, image)}:{tag}")
    try:
        return f"{ref.path}@{artifacts.resolve_digest(ref)}"
    except NotFound:
        return None


def container_engine() -> str:
    """podman, else docker; GovctlError naming both when neither is on PATH."""
    for engine in ("podman", "docker"):
        found = shutil.which(engine)
        if found:
            return found
    raise GovctlError(
        "--build local needs podman or docker, and neither was found on PATH",
        fix="install podman (or docker), or build in the cloud with --build cloud",
    )


def local_build_commands(
    engine: str, context: Path, image: str, tags: list[str]
) -> list[list[str]]:
    """The build and push commands of a local build (one push per tag)."""
    cmd = [engine, "build"]
    for tag in tags:
        cmd += ["-t", f"{image}:{tag}"]
    cmd += ["-f", str(context / DOCKERFILE), str(context)]
    pushes = [[engine, "push", f"{image}:{tag}"] for tag in tags]
    return [cmd, *pushes]


def _local_build(engine: str, data: bytes, image: str, tags: list[str], emit: LogFn) -> str:
    with tempfile.TemporaryDirectory(prefix="govctl-build-") as tmp:
        context = Path(tmp, "context")
        context.mkdir()
        # The same bytes as a cloud build: what is built is what the tarball holds.
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(context, filter="data")
        commands = local_build_commands(engine, context, image, tags)
        _stream(commands[0], emit, "the local image build failed")
        digest_file = Path(tmp, "digest")
        for push in commands[1:]:
            if Path(engine).name == "podman":
                push = [*push[:2], "--digestfile", str(digest_file), *push[2:]]
            out = _stream(
                push,
                emit,
                f"pushing {push[-1]} failed",
                fix=f"authenticate first: gcloud auth configure-docker {image.split('/')[0]}",
            )
    digest = digest_file.read_text().strip() if digest_file.exists() else _pushed_digest(out)
    if not digest:
        # docker prints the digest; when it does not, Artifact Registry knows it.
        digest = artifacts.resolve_digest(artifacts.parse_image(f"{image}:{tags[0]}"))
    return digest


def _pushed_digest(lines: list[str]) -> str:
    for line in reversed(lines):
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", line)
        if m:
            return m.group(1)
    return ""


def _stream(cmd: list[str], emit: LogFn, failure: str, fix: str | None = None) -> list[str]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        emit(lines[-1])
    if proc.wait() != 0:
        tail = "".join(f"\n  | {line}" for line in lines[-15:])
        raise GovctlError(f"{failure} (exit {proc.returncode}){tail}", fix=fix)
    return lines


# --- --image --------------------------------------------------------------------------------


def resolve_image(uri: str) -> str:
    """``uri`` (tag or digest; no tag means ``latest``) as ``PATH@sha256:…``.

    UsageError (exit 2, no API call) for a reference that is not Artifact Registry's, including
    Container Registry (gcr.io); NotFound with the fix when the image does not exist.
    """
    ref = artifacts.parse_image(uri)
    digest = artifacts.resolve_digest(ref)
    return f"{ref.path}@{digest}"
