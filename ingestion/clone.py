"""A hardened, shallow, partial, bare clone of one repository, with a timeout that works off the
main thread.

What git is allowed to do: fetch one commit of the default branch over https, http or git
(``file`` only for a local development URL) — no tags, no submodules, no hooks, no LFS smudge,
no credential prompts, no system or user configuration.

The clone is bare: nothing is checked out. The digest reads the commit's trees and blobs
straight from the fetched objects (``ingestion.objects``), so no work tree is written to disk
and deleted again, and the only git process here is the ``git clone`` itself (and the
``index-pack`` it runs). Blobs larger than ``max_file_size`` are not downloaded
(``--filter=blob:limit``, where the server supports it): gitingest's rules leave files over
that size out of a digest anyway, so the digest is the same as from a full clone.

Every git process runs in its own process group, killed as a whole when the deadline passes or
``cancel`` is set (``SIGALRM`` only works on the main thread).

A :class:`HostToken` (``GITHUB_TOKEN`` for github.com) authenticates clones from its host only:
an ``Authorization`` header scoped by git's URL matching to that scheme, host and port, handed
to the one ``git clone`` that fetches through ``GIT_CONFIG_COUNT``/``KEY``/``VALUE`` — never on
the command line (``ps`` shows argv to every user), never in the clone's ``config`` (environment
configuration is not written there), never to another host (redirects are not followed, and the
header's scope would not match one), never in an error message.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ingestion.feed import is_local

# How often a running git process is checked for the deadline and the cancel event.
POLL_SECONDS = 0.05
_STDERR_SHOWN = 600

_HARDENING = (
    "core.hooksPath=/dev/null",
    "core.symlinks=true",
    "core.fsmonitor=false",
    "credential.helper=",
    "filter.lfs.smudge=",
    "filter.lfs.process=",
    "filter.lfs.clean=",
    "filter.lfs.required=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "advice.detachedHead=false",
    "protocol.allow=never",
    # A redirect could lead anywhere, off the allowed hosts (--allow-host); the feed names
    # each repository's canonical URL, so there is nothing to follow.
    "http.followRedirects=false",
)

_NOT_FOUND = (
    "repository not found",
    "not exported",
    "does not appear to be a git repository",
    "does not exist",
    "returned error: 404",
    "authentication failed",  # GitHub answers 401 for repositories that are gone or private
    "could not read username",
    "terminal prompts disabled",
)
_HTTP_NOT_FOUND = re.compile(r"fatal: repository '[^']*' not found")
_UNREACHABLE = (
    "connection refused",
    "unable to connect",
    "could not resolve host",
    "failed to connect",
    "couldn't connect",
    "connection timed out",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "unable to access",
    "returned error: 5",
)
# The server's copy is broken: upload-pack dies mid-pack, or sends objects that do not add up.
# Retrying does not help; the repository's owner (or GitHub) has to repair it.
_CORRUPT = (
    "early eof",
    "index-pack failed",
    "did not receive expected object",
    "invalid index-pack output",
    "is corrupt",
    "bad object",
)


class CloneError(Exception):
    """A repository could not be cloned; ``reason`` is a short code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        # timeout | unreachable | not_found | repository_corrupt | redirected | git_failed |
        # cancelled
        self.reason = reason


@dataclass(frozen=True)
class HostToken:
    """A token sent to one host (``github.com``); ``https`` only unless ``allow_http``
    (loopback test servers). Its repr hides the token, so no log or traceback shows it."""

    host: str  # as in the URL: "github.com", "127.0.0.1:8080"
    token: str = field(repr=False)
    allow_http: bool = False

    def applies_to(self, url: str) -> bool:
        parts = urlsplit(url)
        schemes = ("https", "http") if self.allow_http else ("https",)
        # Exact host (and port): no userinfo, no look-alike (github.com.evil.example).
        return (
            parts.scheme in schemes
            and "@" not in parts.netloc
            and parts.netloc.lower() == self.host.lower()
        )

    def config(self, url: str) -> dict[str, str]:
        """The environment that makes git send the header to this host only."""
        scheme = urlsplit(url).scheme
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{scheme}://{self.host}/.extraheader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }


@dataclass(frozen=True)
class Clone:
    path: Path  # a bare git directory holding one commit of the default branch (or none)


def clone(
    url: str,
    dest: Path,
    *,
    max_file_size: int,
    timeout: float,
    cancel: threading.Event | None = None,
    auth: HostToken | None = None,
) -> Clone:
    """Clone ``url`` bare into ``dest`` (which must not exist); ``dest`` is removed on any failure.

    ``auth`` is used when ``url`` is on its host, and ignored otherwise."""
    if os.path.lexists(dest):
        raise FileExistsError(f"clone destination {dest} already exists")
    git = _Git(url, dest, deadline=time.monotonic() + timeout, cancel=cancel)
    if auth is not None and auth.token and auth.applies_to(url):
        git.auth_env = auth.config(url)
        git.redact = (auth.token, git.auth_env["GIT_CONFIG_VALUE_0"].rsplit(" ", 1)[1])
    try:
        git.fetch(max_file_size)
        return Clone(dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


class _Git:
    def __init__(
        self, url: str, dest: Path, *, deadline: float, cancel: threading.Event | None
    ) -> None:
        self.url = url
        self.dest = dest
        self.deadline = deadline
        self.cancel = cancel
        self.local = is_local(url)
        self.auth_env: dict[str, str] = {}  # for the one command that fetches
        self.redact: tuple[str, ...] = ()  # never in an error message, whatever git prints

    def fetch(self, max_file_size: int) -> None:
        protocols = ["https", "http", "git"] + (["file"] if self.local else [])
        self.run(
            [
                "clone",
                "--quiet",
                "--bare",
                "--depth=1",
                "--single-branch",
                "--no-tags",
                "--no-recurse-submodules",
                "--template=",
                # The filter omits blobs of *at least* the limit; gitingest skips files *over*
                # max_file_size, so a file of exactly that size must still arrive.
                f"--filter=blob:limit={max_file_size + 1}",
                *(["--no-local"] if self.local else []),
                "--",
                self.url,
                str(self.dest),
            ],
            protocols=protocols,
            extra_env=self.auth_env,
        )

    def run(
        self,
        args: list[str],
        *,
        protocols: list[str],
        extra_env: dict[str, str],
    ) -> None:
        """Run one git command that may use ``protocols``, within the deadline."""
        command = git_command(args, protocols)
        proc = subprocess.Popen(
            command,
            env={**git_environment(protocols), **extra_env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed whole, helpers included
        )
        while True:
            if self.cancel is not None and self.cancel.is_set():
                _kill(proc)
                raise CloneError("cancelled", f"clone of {self.url} cancelled")
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                _kill(proc)
                raise CloneError("timeout", f"clone of {self.url} timed out")
            try:
                _, err = proc.communicate(timeout=min(POLL_SECONDS, remaining))
                break
            except subprocess.TimeoutExpired:
                continue  # communicate() keeps what it has read
        if proc.returncode != 0:
            text = err.decode(errors="replace").strip()
            for secret in self.redact:
                text = text.replace(secret, "[redacted]")
            reason = classify(text)
            shown = text if len(text) <= _STDERR_SHOWN else "…" + text[-_STDERR_SHOWN:]
            raise CloneError(reason, f"git {args[0]} of {self.url} failed ({reason}): {shown}")


def classify(stderr: str) -> str:
    """The failure reason a git error message points at."""
    text = stderr.lower()
    # git's own words for an HTTP 404 ("fatal: repository 'URL/' not found"); GitHub adds
    # "remote: Repository not found." before it, other smart-HTTP servers do not.
    if any(marker in text for marker in _NOT_FOUND) or _HTTP_NOT_FOUND.search(text):
        return "not_found"
    if "returned error: 301" in text or "returned error: 302" in text:
        return "redirected"  # moved (renamed?): the feed should name the new URL
    if any(marker in text for marker in _CORRUPT):
        return "repository_corrupt"
    if any(marker in text for marker in _UNREACHABLE):
        return "unreachable"
    return "git_failed"


def git_command(args: list[str], protocols: Sequence[str] = ()) -> list[str]:
    """``git`` with the hardening configuration; ``protocols`` empty forbids every transport."""
    config = [*_HARDENING, *(f"protocol.{p}.allow=always" for p in protocols)]
    return ["git", *(arg for item in config for arg in ("-c", item)), *args]


def git_environment(protocols: Sequence[str] = ()) -> dict[str, str]:
    """The environment of every git process the job runs (clone, and the digest's reads)."""
    # Nothing from the caller's GIT_* variables (GIT_DIR, GIT_CONFIG_PARAMETERS, GIT_SSH, …)
    # may steer this git; the rest (PATH, HOME, TMPDIR, proxies) is kept.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS=shutil.which("true") or "true",
        SSH_ASKPASS=shutil.which("true") or "true",
        GIT_LFS_SKIP_SMUDGE="1",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        # Overrides any protocol.*.allow configuration; "none" names no real protocol.
        GIT_ALLOW_PROTOCOL=":".join(protocols) or "none",
        GIT_PROTOCOL_FROM_USER="0",
        LC_ALL="C",  # English messages, for classify()
        LANGUAGE="C",
    )
    if not protocols:
        env["GIT_NO_LAZY_FETCH"] = "1"  # git >= 2.44; older git: GIT_ALLOW_PROTOCOL blocks it
    return env


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
