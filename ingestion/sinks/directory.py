"""A local directory that stores exactly what the bucket stores.

``DIR/{owner}/{name}.md`` holds the digest and ``DIR/{owner}/{name}.md.meta.json`` its custom
metadata as a JSON object, so the incremental logic is the same for both sinks. Every file is
written to a hidden temporary file in the same directory and renamed into place; the metadata
goes last, and a digest without metadata counts as absent (it is redone next time).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ingestion.sinks.base import RESERVED, STATE_DIR, Sink, SinkError, Stored, digest_key

META_SUFFIX = ".meta.json"


class DirSink(Sink):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(
                f"cannot create the sink directory {self.root}: {exc.strerror or exc} "
                "— fix --sink or create the directory"
            ) from None
        try:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as exc:
            raise SinkError(
                f"the sink directory {self.root} is not writable: {exc.strerror or exc} "
                "— fix its permissions or choose another --sink"
            ) from None

    def list_digests(self) -> dict[str, Stored]:
        found: dict[str, Stored] = {}
        try:
            owners = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise SinkError(f"cannot list the sink directory {self.root}: {exc}") from None
        for owner_dir in owners:
            if owner_dir.name.startswith(RESERVED) or not owner_dir.is_dir(follow_symlinks=False):
                continue
            with os.scandir(owner_dir.path) as entries:
                for entry in entries:
                    if not entry.name.endswith(".md" + META_SUFFIX):
                        continue
                    digest_name = entry.name[: -len(META_SUFFIX)]
                    key = digest_key(f"{owner_dir.name}/{digest_name}")
                    size = _file_size(os.path.join(owner_dir, digest_name))
                    if key is None or size is None:
                        continue
                    metadata = _read_metadata(Path(entry.path))
                    if metadata is not None:
                        found[key] = Stored(metadata, size)
        return found

    def _put_digest(self, relative: str, source: Path, metadata: dict[str, str]) -> None:
        path = self.root / relative
        self._write(path, source)
        self._write(_meta_path(path), _encode(metadata))

    def _put_metadata(self, relative: str, metadata: dict[str, str]) -> None:
        path = self.root / relative
        if not path.is_file():
            raise SinkError(f"cannot update the metadata of {path}: the digest does not exist")
        self._write(_meta_path(path), _encode(metadata))

    def _put_report(self, relative: str, body: bytes) -> None:
        self._write(self.root / relative, body)

    def _read(self, relative: str) -> tuple[bytes | None, str]:
        try:
            data = (self.root / relative).read_bytes()
        except FileNotFoundError:
            return None, ""
        except OSError as exc:
            raise SinkError(f"cannot read {self.root / relative}: {exc.strerror or exc}") from None
        return data, hashlib.sha256(data).hexdigest()

    def _write_if(self, relative: str, body: bytes, version: str, content_type: str) -> bool:
        path = self.root / relative
        try:
            if not version:
                return create_exclusive(path, body)
            # Every conditional update of this sink goes through one lock file, so the check
            # and the write are one step for the tasks of this machine.
            lock = self.root / STATE_DIR / ".lock"
            lock.parent.mkdir(parents=True, exist_ok=True)
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                if self._read(relative)[1] != version:
                    return False
                atomic_write(path, body)
                return True
        except OSError as exc:
            raise SinkError(
                f"cannot write {path}: {exc.strerror or exc} — check the sink directory"
            ) from None

    def _write(self, path: Path, data: bytes | Path) -> None:
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise SinkError(
                f"cannot write {path}: {exc.strerror or exc} — check the sink directory"
            ) from None


def atomic_write(path: Path, data: bytes | Path) -> None:
    """Write ``data`` (bytes, or a file's content) to ``path`` so readers see the old file or
    the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, Path):
                with data.open("rb") as source:
                    shutil.copyfileobj(source, handle)
            else:
                handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide digests from other readers
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` whole with ``data`` unless it exists (then False): the file is written
    aside and linked into place, which fails like O_EXCL when the name is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _file_size(path: str) -> int | None:
    """The size of the regular file at ``path``; None when there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _meta_path(digest: Path) -> Path:
    return digest.with_name(digest.name + META_SUFFIX)


def _encode(metadata: dict[str, str]) -> bytes:
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _read_metadata(path: Path) -> dict[str, str] | None:
    """The metadata object, or None when the file is unreadable or not an object of strings."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, str)}
