"""Building for real: ``govctl emulator start --build-with podman``.

The docker build steps of a build (``gcr.io/cloud-builders/docker`` with ``build …``) run as
``BUILD_COMMAND ARGS…`` in the unpacked source, where ``BUILD_COMMAND`` is the ``--build-with``
value: ``podman`` (meaning ``podman build``), ``docker``, or a longer prefix such as
``podman build --build-arg BASE=localhost/pybase:bookworm``. The built images stay in the local
engine's storage (nothing is pushed: there is no registry); their digests are what Artifact
Registry records.
"""

from __future__ import annotations

import io
import shlex
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

ENGINES = ("podman", "docker")
DOCKER_BUILDERS = ("gcr.io/cloud-builders/docker", "docker")


def parse_build_with(value: str) -> list[str]:
    """``--build-with`` as a command prefix; ValueError with the expected form when bad."""
    words = shlex.split(value)
    if not words or Path(words[0]).name not in ENGINES:
        raise ValueError(
            f"--build-with {value!r}: expected podman or docker, optionally followed by "
            "`build` and its options (e.g. 'podman build --build-arg BASE=IMAGE')"
        )
    if shutil.which(words[0]) is None:
        raise ValueError(f"--build-with {value!r}: {words[0]} is not on PATH")
    if len(words) == 1 or words[1] != "build":
        words.insert(1, "build")
    return words


def is_docker_build(name: str, args: list[str]) -> bool:
    return name.split("@")[0].split(":")[0] in DOCKER_BUILDERS and args[:1] == ["build"]


def unpack(data: bytes, into: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(into, filter="data")


class Engine:
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def run(self, args: list[str], cwd: Path, emit: Callable[[str], None]) -> int:
        """Run ``BUILD_COMMAND args[1:]`` (args[0] is ``build``) in ``cwd``; emit each line."""
        proc = subprocess.Popen(
            [*self.command, *args[1:]],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        with self._lock:
            self._procs.add(proc)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                emit(line.rstrip("\n"))
            return proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)

    def digest(self, image: str) -> str | None:
        """The locally built image's digest (``sha256:…``), or None when it does not exist."""
        out = subprocess.run(
            [self.command[0], "image", "inspect", "--format", "{{.Digest}}|{{.Id}}", image],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            return None
        digest, _, image_id = out.stdout.strip().partition("|")
        if digest.startswith("sha256:"):
            return digest
        image_id = image_id.removeprefix("sha256:")
        return f"sha256:{image_id}" if image_id else None

    def kill(self) -> None:
        with self._lock:
            for proc in self._procs:
                proc.kill()
