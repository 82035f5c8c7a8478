"""Real git repositories for tests, served over the git protocol by ``git daemon``."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from govctl.emulator.lifecycle import Server
from govctl.emulator.storage import free_port

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str | os.PathLike[str], cwd: Path | None = None) -> str:
    out = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
    )
    return out.stdout.decode(errors="replace").strip()


def make_repo(
    path: Path,
    files: dict[str, str | bytes] | None = None,
    *,
    symlinks: dict[str, str] | None = None,
    message: str = "initial",
) -> Path:
    """Create (or add a commit to) the repository at ``path``.

    ``files`` maps relative paths to contents; ``symlinks`` maps link paths to targets.
    With neither, an existing repository gets an empty commit; a new one stays empty
    (no commit at all).
    """
    if not (path / ".git").exists():
        path.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "-b", "main", path)
        git("config", "uploadpack.allowFilter", "true", cwd=path)
        if not files and not symlinks:
            return path
    for rel, content in (files or {}).items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
    for rel, dest in (symlinks or {}).items():
        link = path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(dest)
    git("add", "-A", cwd=path)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=path)
    return path


def head(path: Path) -> str:
    return git("rev-parse", "HEAD", cwd=path)


def bulk_repo(path: Path, files: Iterable[tuple[str, bytes]]) -> Path:
    """A bare repository at ``path`` with one commit holding ``files`` (path, contents),
    written by ``git fast-import``: tens of thousands of files in seconds, no work tree."""
    git("init", "-q", "--bare", "-b", "main", path)
    chunks = [b"commit refs/heads/main\n", b"committer T <t@example.invalid> 1735689600 +0000\n",
              b"data 7\ninitial\n"]  # fmt: skip
    for rel, content in files:
        chunks.append(f"M 100644 inline {rel}\ndata {len(content)}\n".encode() + content + b"\n")
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=path,
        input=b"".join(chunks),
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
    )
    return path


class GitServer(Server):
    """``git daemon`` on a free loopback port serving every repository under ``root``.

    Repositories are reached as ``git://127.0.0.1:PORT/<relative path>``.
    ``upload_packs()`` counts the fetches/clones the daemon has served, so tests can prove
    that a run cloned nothing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.log = root.parent / f"git-daemon-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, rel: str) -> str:
        return f"git://127.0.0.1:{self.port}/{rel}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> GitServer:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    "git", "daemon", "--reuseaddr", "--verbose", "--export-all",
                    "--log-destination=stderr", "--enable=upload-pack",
                    f"--base-path={self.root}", "--listen=127.0.0.1", f"--port={self.port}",
                    str(self.root),
                ],
                stdout=log,
                stderr=log,
                env={**os.environ, **GIT_ENV},
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while "Ready to rumble" not in self.log.read_text(errors="replace"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"git daemon did not start: {self.log.read_text()}")
            time.sleep(0.01)
        return self

    def upload_packs(self, rel: str | None = None) -> int:
        """How many upload-pack requests (clones/fetches) were served, optionally for one repo."""
        text = self.log.read_text(errors="replace")
        hits = re.findall(r"Request upload-pack for '([^']*)'", text)
        if rel is None:
            return len(hits)
        return sum(1 for h in hits if h.strip("/") == rel.strip("/"))

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
