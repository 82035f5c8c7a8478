"""GITHUB_TOKEN: clones from the token's host authenticate, over git's smart HTTP protocol;
nothing else ever sees the token (other hosts, redirects, argv, .git/config, errors, logs)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion import clone as clone_module
from ingestion import runner
from ingestion.cli import parse_options
from ingestion.clone import CloneError, HostToken, clone
from ingestion.logs import configured
from tests.ingestion.test_clone import _http
from tests.support.git import git, make_repo
from tests.support.git_http import SmartHttpServer

TOKEN = "ghp_TESTtoken0123456789abcdefghijklmnopqr"
BASIC = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
LIMIT = 100_000


@pytest.fixture
def github(tmp_path: Path) -> Iterator[SmartHttpServer]:
    """The host the token belongs to (github.com's stand-in)."""
    root = tmp_path / "github"
    make_repo(root / "alphagov" / "frontend", {"README.md": "# frontend\n"})
    with SmartHttpServer(root) as server:
        yield server


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[SmartHttpServer]:
    root = tmp_path / "elsewhere"
    make_repo(root / "org" / "repo", {"README.md": "# repo\n"})
    with SmartHttpServer(root) as server:
        yield server


def _token(server: SmartHttpServer) -> HostToken:
    return HostToken(server.host, TOKEN, allow_http=True)


def _everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def test_the_token_reaches_its_host_and_stays_out_of_the_clone(
    github: SmartHttpServer, tmp_path: Path
) -> None:
    dest = tmp_path / "c"
    checkout = clone(
        f"{github.url}/alphagov/frontend", dest, max_file_size=LIMIT, timeout=30,
        auth=_token(github),
    )  # fmt: skip

    assert git("cat-file", "-p", "HEAD:README.md", cwd=checkout.path) == "# frontend"
    assert github.requests, "git asked nothing"
    assert {r.authorization for r in github.requests} == {BASIC}
    everything = _everything_under(dest)
    assert TOKEN.encode() not in everything
    assert BASIC.split()[1].encode() not in everything
    assert "extraheader" not in (dest / "config").read_text()  # a bare clone's config


def test_another_host_never_sees_the_token(
    github: SmartHttpServer, elsewhere: SmartHttpServer, tmp_path: Path
) -> None:
    clone(
        f"{elsewhere.url}/org/repo", tmp_path / "c", max_file_size=LIMIT, timeout=30,
        auth=_token(github),
    )  # fmt: skip
    assert elsewhere.requests
    assert {r.authorization for r in elsewhere.requests} == {None}


def test_a_redirect_off_the_token_host_is_not_followed(tmp_path: Path) -> None:
    with (
        _http(404) as (other, asked),
        _http(301, other) as (token_host, _),
        pytest.raises(CloneError) as caught,
    ):
        auth = HostToken(token_host.removeprefix("http://"), TOKEN, allow_http=True)
        clone(f"{token_host}/org/repo.git", tmp_path / "c", max_file_size=LIMIT, timeout=30,
              auth=auth)  # fmt: skip
    assert asked == []
    assert caught.value.reason == "redirected"
    assert TOKEN not in str(caught.value)


def test_the_token_is_never_on_a_command_line_and_only_the_fetch_gets_it(
    github: SmartHttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real = subprocess.Popen

    def spy(command: list[str], **kwargs: Any) -> Any:
        seen.append((list(command), dict(kwargs["env"])))
        return real(command, **kwargs)

    monkeypatch.setattr(clone_module.subprocess, "Popen", spy)
    clone(f"{github.url}/alphagov/frontend", tmp_path / "c", max_file_size=LIMIT, timeout=30,
          auth=_token(github))  # fmt: skip

    assert len(seen) > 1
    for argv, env in seen:
        assert not any(TOKEN in a or BASIC.split()[1] in a for a in argv), argv
        has_header = any(BASIC in value for value in env.values())
        assert has_header == ("clone" in argv), argv


def test_a_failing_clone_does_not_show_the_token(github: SmartHttpServer, tmp_path: Path) -> None:
    with pytest.raises(CloneError) as caught:
        clone(f"{github.url}/alphagov/gone", tmp_path / "c", max_file_size=LIMIT, timeout=30,
              auth=_token(github))  # fmt: skip
    assert caught.value.reason == "not_found", str(caught.value)
    assert TOKEN not in str(caught.value) and BASIC.split()[1] not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://github.com/alphagov/frontend", True),
        ("https://GitHub.com/alphagov/frontend", True),
        ("http://github.com/alphagov/frontend", False),  # never in clear text
        ("git://github.com/alphagov/frontend", False),
        ("https://github.com.evil.example/alphagov/frontend", False),
        ("https://user@github.com/alphagov/frontend", False),
        ("https://github.com:8443/alphagov/frontend", False),
        ("https://gitlab.com/alphagov/frontend", False),
    ],
)
def test_github_token_from_the_environment_is_for_github_com_over_https(
    url: str, sent: bool
) -> None:
    auth = runner.github_auth({"GITHUB_TOKEN": TOKEN})
    assert auth is not None and auth.applies_to(url) is sent
    assert TOKEN not in repr(auth)
    assert runner.github_auth({"GITHUB_TOKEN": "  "}) is None
    assert runner.github_auth({}) is None


def test_a_run_with_the_token_clones_with_it_and_never_logs_it(
    github: SmartHttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test's github.com is the smart HTTP server; the runner's own lookup is tested above.
    monkeypatch.setattr(runner, "github_auth", lambda environ: _token(github))
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps([
        {"owner": "alphagov", "name": "frontend", "url": f"{github.url}/alphagov/frontend",
         "pushedAt": "2026-11-01T00:00:00Z"},
        {"owner": "alphagov", "name": "gone", "url": f"{github.url}/alphagov/gone",
         "pushedAt": "2026-11-01T00:00:00Z"},
    ]))  # fmt: skip
    environ = {"CLOUD_RUN_EXECUTION": f"exec-{time.monotonic_ns()}", "GITHUB_TOKEN": TOKEN}
    argv = ["--feed", str(feed), "--sink", str(tmp_path / "out"), "--allow-host", github.host]
    out = io.StringIO()
    with configured(out, level="DEBUG", human=False):
        runner.run(parse_options(argv, environ), environ=environ)

    assert {r.authorization for r in github.requests} == {BASIC}
    logged = out.getvalue()
    assert '"github_token": "set"' in logged
    assert "alphagov/gone" in logged  # the failure is logged, without the token
    assert TOKEN not in logged and BASIC.split()[1] not in logged
    assert TOKEN.encode() not in _everything_under(tmp_path / "out")
