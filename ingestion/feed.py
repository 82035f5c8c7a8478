"""The repository feed: fetch ``repos.json``, validate every entry, drop duplicates.

The feed is published by xgov-opensource-repo-scraper as one JSON array of objects
(``owner``, ``name``, ``url``, ``archived``, ``language``, ``createdAt``, ``updatedAt``,
``pushedAt``, … — camelCase, as GitHub's API returns them through Octokat). An entry that
could make git do something other than a plain fetch from an allowed host is rejected, never
cloned: URLs starting with ``-`` (an option), ``<transport>::<address>`` (a remote helper such as
``ext::sh -c …`` or ``fd::3``), and local paths / ``file://`` unless ``allow_local``.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

# Retry timing for the feed download; a module constant so tests can shorten it.
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 10.0
# The whole download, retries included, ends by then (--feed-deadline): a server that trickles
# one byte at a time never times out a read, so only an overall bound ends it.
DEFAULT_DEADLINE = 300.0
_CHUNK = 64 * 1024

# GitHub allows at most 39 characters for an owner and 100 for a repository name.
MAX_NAME_LENGTH = 100
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_REMOTE_SCHEMES = ("https", "http", "git")
_DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418}


@dataclass(frozen=True)
class Repo:
    owner: str
    name: str
    url: str
    pushed_at: str  # the feed's pushedAt, verbatim ("" when absent)
    size_kb: int = 0  # the feed's ``size`` (GitHub reports KB) when present; used for balancing

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class Rejection:
    entry: str  # "owner/name", or "#<index>" when the entry has no usable name
    # missing_field | bad_name | bad_url | host_not_allowed | unsafe_url | not_an_object
    reason: str
    detail: str  # human text naming the bad value


@dataclass
class Feed:
    repos: list[Repo]
    rejected: list[Rejection]
    duplicates: int


class FeedError(Exception):
    """The feed as a whole cannot be used (unreachable, not JSON, not a list)."""


def load_feed(
    source: str,
    *,
    allow_hosts: Sequence[str] = ("github.com",),
    allow_local: bool = False,
    limit: int | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    deadline: float = DEFAULT_DEADLINE,
) -> Feed:
    """Read the feed at ``source`` (an http(s) URL or a local path) and validate it.

    ``limit`` keeps the first N *valid*, de-duplicated entries; nothing after them is looked at.
    """
    entries = read_entries(source, timeout=timeout, retries=retries, deadline=deadline)
    return parse_entries(entries, allow_hosts=allow_hosts, allow_local=allow_local, limit=limit)


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def credentials_in(url: str) -> str | None:
    """``url`` with its user information hidden when it carries any (``user:TOKEN@``), else
    None. Such a feed URL is refused: the token would show in logs and reports."""
    if not is_remote(url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.username is None and parts.password is None and "@" not in parts.netloc:
        return None
    return _redact(parts)


def read_entries(
    source: str,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    deadline: float = DEFAULT_DEADLINE,
) -> list[Any]:
    """The feed's entries, not yet validated: a JSON list, or FeedError."""
    if is_remote(source):
        raw = _Download(source, timeout=timeout, retries=retries).within(deadline)
    else:
        raw = _read_local(source)
    try:
        entries = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(
            f"feed {source} is not valid JSON ({exc}) — check that --feed points at repos.json"
        ) from None
    if not isinstance(entries, list):
        raise FeedError(
            f"feed {source} is a JSON {type(entries).__name__}, expected a list of repositories "
            "— check that --feed points at repos.json"
        )
    return entries


# The fields of an entry the job reads: a snapshot of the feed keeps these only.
FIELDS = ("owner", "name", "url", "pushedAt", "size")


def slim(entries: Sequence[Any]) -> list[Any]:
    """``entries`` with only the fields :func:`parse_entries` reads (same validation result)."""
    return [
        {k: v for k, v in entry.items() if k in FIELDS} if isinstance(entry, dict) else entry
        for entry in entries
    ]


def parse_entries(
    entries: Sequence[Any],
    *,
    allow_hosts: Sequence[str] = ("github.com",),
    allow_local: bool = False,
    limit: int | None = None,
) -> Feed:
    """Validate already-decoded feed entries (feed order is kept)."""
    repos: list[Repo] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    duplicates = 0
    for index, entry in enumerate(entries):
        if limit is not None and len(repos) >= limit:
            break
        result = _parse_entry(index, entry, allow_hosts=allow_hosts, allow_local=allow_local)
        if isinstance(result, Rejection):
            rejected.append(result)
            continue
        folded = result.key.lower()  # GitHub names are case-insensitive
        if folded in seen:
            duplicates += 1
            continue
        seen.add(folded)
        repos.append(result)
    return Feed(repos=repos, rejected=rejected, duplicates=duplicates)


def check_name(value: str) -> str | None:
    """Why ``value`` is not a plain GitHub owner/repository name, or None when it is."""
    if len(value) > MAX_NAME_LENGTH:
        return f"{value[:40]!r}… is longer than {MAX_NAME_LENGTH} characters"
    if not _NAME_RE.fullmatch(value):
        return f"{value!r} has characters outside A-Z a-z 0-9 . _ -"
    if value in (".", ".."):
        return f"{value!r} is a relative path component"
    return None


def check_url(url: str, *, allow_hosts: Sequence[str], allow_local: bool) -> tuple[str, str] | None:
    """``(reason, detail)`` when git must not be given ``url``, else None.

    Remote URLs must be ``https``, ``http`` or ``git`` on a host in ``allow_hosts``
    (``host`` matches that host on the scheme's default port, ``host:port`` that exact port;
    ``github.com`` never matches ``www.github.com`` or ``github.com.evil``).
    """
    if not url or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "bad_url", f"{url!r} is empty or has spaces or control characters"
    if url.startswith("-"):
        return "unsafe_url", f"{url!r} would be read by git as an option"
    if "::" in url:
        return "unsafe_url", f"{url!r} would run a git transport helper"
    if is_local(url):
        if allow_local:
            return None
        return "unsafe_url", f"{url!r} is a local repository (allowed only with --allow-local)"
    return _check_remote(url, allow_hosts)


def _check_remote(url: str, allow_hosts: Sequence[str]) -> tuple[str, str] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return "bad_url", f"{url!r} is not a valid URL ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in _REMOTE_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "scp-style address"
        return "bad_url", f"{url!r} uses {shown}; only https, http and git are allowed"
    if parts.username is not None or parts.password is not None:
        return "bad_url", f"{_redact(parts)!r} carries credentials"
    host = (parts.hostname or "").lower()
    if not host or parts.path.strip("/") == "":
        return "bad_url", f"{url!r} has no host or no repository path"
    if not _host_allowed(host, port, scheme, allow_hosts):
        shown = f"{host}:{port}" if port is not None else host
        return "host_not_allowed", f"{shown} is not an allowed host (--allow-host)"
    return None


def is_local(url: str) -> bool:
    """Whether git would read ``url`` from this machine (a path or ``file://``).

    Mirrors git's rule: without ``://``, a ``:`` before any ``/`` makes it an scp-style
    ``host:path`` (ssh), anything else is a path.
    """
    if url.lower().startswith("file:"):
        return True
    if "://" in url:
        return False
    colon, slash = url.find(":"), url.find("/")
    return colon == -1 or (slash != -1 and slash < colon)


def _host_allowed(host: str, port: int | None, scheme: str, allow_hosts: Sequence[str]) -> bool:
    effective = port if port is not None else _DEFAULT_PORTS[scheme]
    for allowed in allow_hosts:
        allowed_host, allowed_port = _split_host(allowed)
        if allowed_host != host:
            continue
        if allowed_port is None and effective == _DEFAULT_PORTS[scheme]:
            return True
        if allowed_port is not None and allowed_port == effective:
            return True
    return False


def _split_host(spec: str) -> tuple[str, int | None]:
    """``"host"`` / ``"host:port"`` / ``"[v6]:port"`` → (lowercase host, port or None)."""
    parts = urllib.parse.urlsplit(f"//{spec.strip()}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port


def _redact(parts: urllib.parse.SplitResult) -> str:
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, f"***@{host}", parts.path, "", ""))


def _parse_entry(
    index: int, entry: Any, *, allow_hosts: Sequence[str], allow_local: bool
) -> Repo | Rejection:
    if not isinstance(entry, dict):
        return Rejection(f"#{index}", "not_an_object", f"entry is a JSON {type(entry).__name__}")
    owner, name, url = entry.get("owner"), entry.get("name"), entry.get("url")
    label = f"{owner}/{name}" if isinstance(owner, str) and isinstance(name, str) else f"#{index}"
    label = label.encode("unicode_escape").decode("ascii")  # control characters stay visible
    missing = [
        field
        for field, value in (("owner", owner), ("name", name), ("url", url))
        if not isinstance(value, str) or not value
    ]
    if missing:
        return Rejection(label, "missing_field", f"missing or empty: {', '.join(missing)}")
    assert isinstance(owner, str) and isinstance(name, str) and isinstance(url, str)
    for field, value in (("owner", owner), ("name", name)):
        problem = check_name(value)
        if problem:
            return Rejection(label, "bad_name", f"{field} {problem}")
    if owner.startswith("_"):  # no GitHub owner does; the sink keeps "_" names for itself
        return Rejection(label, "bad_name", f"owner {owner!r} starts with '_'")
    url_problem = check_url(url, allow_hosts=allow_hosts, allow_local=allow_local)
    if url_problem:
        return Rejection(label, *url_problem)
    pushed_at = entry.get("pushedAt")
    size = entry.get("size")
    return Repo(
        owner=owner,
        name=name,
        url=url,
        pushed_at=pushed_at if isinstance(pushed_at, str) else "",
        size_kb=size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 0,
    )


def _read_local(source: str) -> bytes:
    path = Path(source[len("file://") :] if source.startswith("file://") else source)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FeedError(
            f"cannot read feed file {path}: {exc.strerror or exc} — check --feed"
        ) from None


class _Download:
    """One feed download with an overall deadline.

    urllib3 retries the request (status 429/5xx, dropped connections) and bounds each connect
    and each read; the body is read in chunks in a thread of its own, so that the caller can
    stop waiting at the deadline and cut the connection, however slowly the server sends.
    """

    def __init__(self, url: str, *, timeout: float, retries: int) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._body: bytes | None = None
        self._error: FeedError | None = None
        self._abandoned = False

    def within(self, deadline: float) -> bytes:
        thread = threading.Thread(target=self._run, name="feed-download", daemon=True)
        thread.start()
        if not self._done.wait(deadline):
            self._abandon()
            raise FeedError(
                f"feed {self.url} did not download within the {deadline:g} s deadline "
                "(--feed-deadline) — check the server, or raise the deadline"
            )
        if self._error is not None:
            raise self._error
        assert self._body is not None
        return self._body

    def _abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            response = self._response
        if response is not None:
            response.shutdown()  # unblocks a read waiting on the socket

    def _run(self) -> None:
        try:
            self._body = self._fetch()
        except FeedError as exc:
            self._error = exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._error = FeedError(
                f"cannot fetch feed {self.url}: {exc} — check the URL and the network, then re-run"
            )
        finally:
            self._done.set()

    def _fetch(self) -> bytes:
        retry = urllib3.Retry(
            total=self.retries,
            backoff_factor=BACKOFF_FACTOR,
            backoff_max=BACKOFF_MAX,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            raise_on_status=True,
        )
        timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        with urllib3.PoolManager(retries=retry, timeout=timeout) as http:
            try:
                response = http.request("GET", self.url, preload_content=False)
            except urllib3.exceptions.MaxRetryError as exc:
                raise FeedError(
                    f"cannot fetch feed {self.url} after {self.retries} retries: {exc.reason} "
                    "— check the URL (--feed / REPOS_FEED_URL) and the network, then re-run"
                ) from None
            with self._lock:
                self._response = response
                abandoned = self._abandoned
            if abandoned:
                response.shutdown()
            try:
                return self._body_of(response)
            finally:
                response.release_conn()

    def _body_of(self, response: urllib3.BaseHTTPResponse) -> bytes:
        if response.status >= 400:
            raise FeedError(
                f"feed {self.url} answered HTTP {response.status} — check the URL "
                "(--feed / REPOS_FEED_URL)"
            )
        return b"".join(response.stream(_CHUNK))
