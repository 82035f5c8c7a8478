"""What a task of a mapped image may take from its job: the emulator's trust model.

A job whose image the image map names runs a command installed on this host (by default
``python -I -u -m ingestion``, the installed package). Whoever reaches the emulator's port
writes the job spec, so nothing in it may choose code or paths on this host
(docs/emulator.md#trust-model):

- **variables** that steer how programs are found and loaded, or where they put files, are
  refused: the task fails at start naming them (:func:`refused_variables`);
- **the working directory** is a fresh scratch directory per attempt, in a directory per
  execution in the system's temporary directory (``$TMPDIR/govctl-run-*``: a short path,
  because the job's process pool listens on a Unix socket under ``TMPDIR`` and such paths
  are limited to 107 bytes); the container's ``working_dir`` is taken inside it, as a path
  inside a container's filesystem (:func:`container_workdir`); ``TMPDIR`` points there
  too, and the whole directory goes when the attempt ends, as a Cloud Run instance's
  in-memory filesystem does;
- **the ingestion job's sink** (``--sink`` or ``GCS_BUCKET_NAME``, as the job itself parses
  them) must be a bucket (``gs://``, this emulator's Cloud Storage: tasks always get its
  ``STORAGE_EMULATOR_HOST``) or a relative directory that stays inside the scratch
  directory (:func:`sink_refusal`).

None of this applies to an image no pattern maps, which runs only with
``--run-unmapped-images``: that option runs the caller's own command on this host.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DOCS = "docs/emulator.md#trust-model"

# Deny rather than allow: a mapped image's job keeps its other variables, as on Cloud Run.
# Each of these makes a program load code, or read or write files, the job spec chose: the
# interpreter (PYTHON*, also ignored by `python -I`), the dynamic loader (LD_*, DYLD_*,
# GCONV_PATH, GLIBC_TUNABLES), git (GIT_*: exec path, ssh command, config, hooks), shells
# (BASH_ENV, ENV, BASH_FUNC_*, SHELLOPTS, ...), other interpreters git or a tool may start
# (PERL*, RUBY*, NODE_*), TLS (OPENSSL_*, CA bundles), configuration homes (XDG_*, HOME) and
# the credentials of another cloud (GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_*).
REFUSED_PREFIXES = (
    "PYTHON", "LD_", "DYLD_", "GIT_", "BASH_FUNC_", "PERL", "RUBY", "NODE_", "OPENSSL_",
    "XDG_", "CLOUDSDK_", "GCONV_", "GLIBC_",
)  # fmt: skip
REFUSED_NAMES = frozenset(
    {
        "PATH", "HOME", "TMPDIR", "TEMP", "TMP", "PWD", "SHELL", "ENV", "BASH_ENV",
        "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "IFS", "LOCPATH", "NLSPATH", "HOSTALIASES",
        "LOCALDOMAIN", "RES_OPTIONS", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE", "GOOGLE_APPLICATION_CREDENTIALS", "TERMINFO", "SSH_AUTH_SOCK",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Sandbox:
    """Where each attempt of a mapped image's task runs (see the module docstring)."""

    workdir: str  # the working directory, relative to the attempt's scratch directory


def refused_variables(names: Iterable[str]) -> list[str]:
    """The job's variables a mapped image's task may not have, in the job's order."""
    return [
        name
        for name in dict.fromkeys(names)
        if name.upper() in REFUSED_NAMES or name.upper().startswith(REFUSED_PREFIXES)
    ]


def variables_refusal(image: str, command: Sequence[str], names: list[str]) -> str:
    return (
        f"The emulator refused to start the task: image {image!r} runs "
        f"{' '.join(command)!r} on this host, and the job sets {', '.join(names)}, which would "
        "choose code or files on this host (interpreter, loader, git, shell, TLS or platform "
        f"variables). Remove them from the job; see {DOCS}."
    )


def container_workdir(working_dir: str) -> str:
    """A container's ``working_dir`` as a path relative to the attempt's scratch directory.

    The scratch directory stands for the container's root: ``/app`` is ``<scratch>/app`` and
    no number of ``..`` leaves it.
    """
    return posixpath.normpath("/" + (working_dir or "/")).lstrip("/") or "."


def ingestion_args(argv: Sequence[str]) -> list[str] | None:
    """The job's arguments when ``argv`` runs ``-m ingestion``; None for another command."""
    for i, word in enumerate(argv[:-1]):
        if word == "-m" and argv[i + 1] == "ingestion":
            return list(argv[i + 2 :])
    return None


def sink_refusal(args: Sequence[str], env: Mapping[str, str], workdir: str) -> str | None:
    """Why the ingestion job may not run with ``args`` and ``env``: its sink, if outside.

    The job's own parser decides what the sink is (abbreviated flags, ``--sink=``, the last
    one given, ``GCS_BUCKET_NAME``); arguments it refuses are left for the job to refuse.
    """
    try:
        from ingestion.cli import UsageError, parse_options
    except ImportError as err:  # then `python -m ingestion` could not start either
        return f"The emulator cannot read the job's arguments: {err}; see {DOCS}."
    try:
        sink = parse_options(list(args), env).sink
    except UsageError:
        return None  # the job fails with its own one-line message and writes nothing
    if sink.startswith("gs://") or _inside(posixpath.join(workdir, sink)):
        return None
    return (
        f"The emulator refused to start the task: its sink {sink!r} is a directory outside "
        "the task's scratch directory. A job runs on this host, so it may write only to a "
        "bucket (gs://BUCKET, this emulator's Cloud Storage) or to a relative directory, "
        f"which stays in the task's scratch directory and is removed with it; see {DOCS}."
    )


def _inside(path: str) -> bool:
    normal = posixpath.normpath(path)
    return not posixpath.isabs(normal) and normal != ".." and not normal.startswith("../")


def make_scratch() -> Path:
    """The scratch directory of one execution (removed by the runner when it ends)."""
    return Path(tempfile.mkdtemp(prefix="govctl-run-"))


def attempt_environment(root: Path) -> dict[str, str]:
    """What every attempt in ``root`` gets: its own temporary directory."""
    tmp = str(root / "tmp")
    return {"TMPDIR": tmp, "TEMP": tmp, "TMP": tmp}


def make_attempt_root(scratch: Path, index: int, attempt: int, workdir: str) -> tuple[Path, Path]:
    """A fresh scratch directory for one attempt, and the working directory inside it."""
    root = scratch / f"{index}.{attempt}"  # short: see the module docstring
    (root / "tmp").mkdir(parents=True, mode=0o700)
    cwd = root / workdir
    cwd.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    return root, cwd


def confine(
    image: str,
    command: Sequence[str],
    argv: Sequence[str],
    job_variables: Iterable[str],
    env: Mapping[str, str],
    working_dir: str,
) -> tuple[Sandbox, str | None]:
    """The sandbox of a mapped image's tasks, and why they may not start at all (or None).

    ``command`` is the image map's command, ``argv`` that command with the job's args,
    ``job_variables`` the names the job (and its overrides) set, ``env`` the task's environment.
    """
    sandbox = Sandbox(container_workdir(working_dir))
    refused = refused_variables(job_variables)
    if refused:
        return sandbox, variables_refusal(image, command, refused)
    args = ingestion_args(argv)
    if args is not None:
        return sandbox, sink_refusal(args, env, sandbox.workdir)
    return sandbox, None
