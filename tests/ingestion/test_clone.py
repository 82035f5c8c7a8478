"""The hardened, bare, partial clone against a real ``git daemon``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from govctl.emulator.storage import free_port
from ingestion.clone import CloneError, classify, clone
from tests.support.git import GitServer, git, head, make_repo

LIMIT = 1000


def held_files(clone: Path) -> dict[str, bytes]:
    """The commit's regular files whose contents the clone holds (nothing is checked out)."""
    assert not (clone / "HEAD").is_symlink() and (clone / "objects").is_dir()
    held = set(
        git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=clone).split()
    )
    files = {}
    for line in git("ls-tree", "-r", "--full-tree", "HEAD", cwd=clone).splitlines():
        meta, path = line.split("\t", 1)
        mode, _, oid = meta.split()
        if mode.startswith("100") and oid in held:
            files[path] = subprocess.run(
                ["git", "cat-file", "blob", oid], cwd=clone, capture_output=True, check=True
            ).stdout
    return files


def no_work_tree(clone: Path) -> bool:
    return git("rev-parse", "--is-bare-repository", cwd=clone) == "true"


def object_bytes(clone: Path) -> int:
    objects = clone / "objects"
    return sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())


@pytest.fixture
def stalled_server() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"git://127.0.0.1:{listener.getsockname()[1]}/stalled"


def test_happy_path(git_server: GitServer, tmp_path: Path) -> None:
    repo = make_repo(
        git_server.root / "org" / "app",
        {"README.md": "# app\n", "src/main.py": "print('hi')\n"},
        symlinks={"link": "README.md"},
    )
    make_repo(repo, {"README.md": "# app v2\n"}, message="second")
    dest = tmp_path / "work" / "app"
    dest.parent.mkdir()

    checkout = clone(git_server.url("org/app"), dest, max_file_size=LIMIT, timeout=30)

    assert checkout.path == dest and no_work_tree(dest)
    assert git("rev-parse", "HEAD", cwd=dest) == head(repo)
    assert held_files(dest) == {"README.md": b"# app v2\n", "src/main.py": b"print('hi')\n"}
    assert git("cat-file", "-p", "HEAD:link", cwd=dest) == "README.md"
    # Shallow: one commit, no tags, one request to the server.
    assert git("rev-list", "--count", "HEAD", cwd=dest) == "1"
    assert git("tag", cwd=dest) == ""
    assert git_server.upload_packs("org/app") == 1


def test_empty_repository(git_server: GitServer, tmp_path: Path) -> None:
    make_repo(git_server.root / "empty")
    checkout = clone(git_server.url("empty"), tmp_path / "e", max_file_size=LIMIT, timeout=30)
    assert no_work_tree(checkout.path)
    assert git("cat-file", "--batch-all-objects", "--batch-check", cwd=checkout.path) == ""


def test_files_over_the_limit_are_not_downloaded(git_server: GitServer, tmp_path: Path) -> None:
    huge = os.urandom(300_000)  # incompressible, so its absence shows in the object store
    repo = make_repo(
        git_server.root / "huge",
        {
            "small.txt": "small\n",
            "exact.bin": b"x" * LIMIT,  # exactly the limit: kept (gitingest keeps it too)
            "big.bin": huge,
            "deep/dir/big2.bin": huge + b"2",
            "deep/keep.txt": "kept\n",
        },
    )
    checkout = clone(git_server.url("huge"), tmp_path / "h", max_file_size=LIMIT, timeout=30)

    assert git("rev-parse", "HEAD", cwd=checkout.path) == head(repo)
    assert held_files(checkout.path) == {
        "small.txt": b"small\n",
        "exact.bin": b"x" * LIMIT,
        "deep/keep.txt": b"kept\n",
    }
    assert object_bytes(checkout.path) < 100_000
    # No lazy fetch of the omitted blobs afterwards either.
    assert git_server.upload_packs("huge") == 1


def test_omitted_files_with_awkward_names(git_server: GitServer, tmp_path: Path) -> None:
    huge = os.urandom(5_000)
    odd = "caf\udce9 new\nline.bin"  # not UTF-8 (surrogate-escaped byte 0xe9), with a newline
    make_repo(git_server.root / "odd", {odd: huge, "tab\there.bin": huge, "ok.txt": "ok\n"})
    checkout = clone(git_server.url("odd"), tmp_path / "odd", max_file_size=LIMIT, timeout=30)
    assert held_files(checkout.path) == {"ok.txt": b"ok\n"}
    assert git_server.upload_packs("odd") == 1


def test_server_without_filter_support_still_clones(git_server: GitServer, tmp_path: Path) -> None:
    repo = make_repo(git_server.root / "nofilter", {"big.bin": b"b" * 5_000, "a.txt": "a\n"})
    git("config", "uploadpack.allowFilter", "false", cwd=repo)
    checkout = clone(git_server.url("nofilter"), tmp_path / "n", max_file_size=LIMIT, timeout=30)
    # Everything arrives; gitingest's own size limit then leaves big.bin out of the digest.
    assert held_files(checkout.path) == {"a.txt": b"a\n", "big.bin": b"b" * 5_000}


def test_submodules_are_not_fetched(git_server: GitServer, tmp_path: Path) -> None:
    sub = make_repo(git_server.root / "sub", {"secret.txt": "from the submodule\n"})
    outer = make_repo(
        git_server.root / "outer",
        {".gitmodules": f'[submodule "sub"]\n\tpath = sub\n\turl = {git_server.url("sub")}\n'},
    )
    git("update-index", "--add", "--cacheinfo", f"160000,{head(sub)},sub", cwd=outer)
    git("commit", "-q", "-m", "add submodule", cwd=outer)

    checkout = clone(git_server.url("outer"), tmp_path / "o", max_file_size=LIMIT, timeout=30)

    assert git("rev-parse", "HEAD", cwd=checkout.path) == head(outer)
    assert git("ls-tree", "HEAD", "sub", cwd=checkout.path).startswith("160000 commit ")
    assert git_server.upload_packs("sub") == 0


def test_user_configuration_and_git_environment_cannot_inject_hooks(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repo(git_server.root / "r", {"a.txt": "a\n"})
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    for name in ("reference-transaction", "post-checkout"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
        hook.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.delenv("GIT_CONFIG_NOSYSTEM", raising=False)
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.hooksPath'='{hooks}'")

    # The same setup does run hooks for a plain clone: the test can see a hook run.
    subprocess.run(
        ["git", "clone", "-q", git_server.url("r"), str(tmp_path / "plain")],
        check=True,
        capture_output=True,
    )
    assert marker.exists()
    marker.unlink()

    checkout = clone(git_server.url("r"), tmp_path / "hardened", max_file_size=LIMIT, timeout=30)
    assert held_files(checkout.path) == {"a.txt": b"a\n"}
    assert not marker.exists()
    assert not (checkout.path / "hooks").exists()  # no sample hooks either


def test_nonexistent_repository(git_server: GitServer, tmp_path: Path) -> None:
    dest = tmp_path / "missing"
    with pytest.raises(CloneError) as info:
        clone(git_server.url("no/such/repo"), dest, max_file_size=LIMIT, timeout=30)
    assert info.value.reason == "not_found"
    assert "no/such/repo" in str(info.value)
    assert not dest.exists()


def test_unreachable_host(tmp_path: Path) -> None:
    dest = tmp_path / "unreachable"
    with pytest.raises(CloneError) as info:
        clone(f"git://127.0.0.1:{free_port()}/r", dest, max_file_size=LIMIT, timeout=30)
    assert info.value.reason == "unreachable"
    assert not dest.exists()


def test_timeout_kills_git_and_removes_dest(stalled_server: str, tmp_path: Path) -> None:
    dest = tmp_path / "slow"
    started = time.monotonic()
    with pytest.raises(CloneError) as info:
        clone(stalled_server, dest, max_file_size=LIMIT, timeout=0.5)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 5
    assert not dest.exists()


def test_timeout_works_off_the_main_thread(stalled_server: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            clone(stalled_server, tmp_path / "t", max_file_size=LIMIT, timeout=0.5)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(errors[0], CloneError) and errors[0].reason == "timeout"


def test_cancel_stops_a_running_clone(stalled_server: str, tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(CloneError) as info:
            clone(stalled_server, tmp_path / "c", max_file_size=LIMIT, timeout=60, cancel=cancel)
    finally:
        timer.cancel()
    assert info.value.reason == "cancelled"
    assert time.monotonic() - started < 5
    assert not (tmp_path / "c").exists()


def test_local_repositories_for_development(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src" / "local", {"f.txt": "local\n"})
    by_path = clone(str(repo), tmp_path / "p", max_file_size=LIMIT, timeout=30)
    by_url = clone(repo.as_uri(), tmp_path / "u", max_file_size=LIMIT, timeout=30)
    for checkout in (by_path, by_url):
        assert git("rev-parse", "HEAD", cwd=checkout.path) == head(repo)
        assert held_files(checkout.path) == {"f.txt": b"local\n"}


def test_destination_must_not_exist(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    with pytest.raises(FileExistsError):
        clone("git://127.0.0.1:1/r", tmp_path / "there", max_file_size=LIMIT, timeout=5)
    assert (tmp_path / "there").is_dir()  # someone else's directory is left alone


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            "remote: Repository not found.\nfatal: repository 'https://github.com/o/x/' not found",
            "not_found",
        ),
        (
            "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
            "not_found",
        ),
        (
            "fatal: unable to access 'https://github.com/o/r/': Could not resolve host: github.com",
            "unreachable",
        ),
        (
            "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502",
            "unreachable",
        ),
        ("fatal: protocol 'ext' is not supported", "git_failed"),
        (
            "remote: fatal: unable to read 3f2a…\nfatal: the remote end hung up unexpectedly\n"
            "fatal: early EOF\nfatal: index-pack failed",
            "repository_corrupt",
        ),
    ],
)
def test_classify_github_messages(stderr: str, reason: str) -> None:
    assert classify(stderr) == reason


def test_a_corrupt_repository_on_the_server_is_repository_corrupt(
    git_server: GitServer, tmp_path: Path
) -> None:
    """upload-pack dies on a broken object: git says "early EOF", which is not a network issue."""
    repo = make_repo(git_server.root / "org" / "broken", {"a.txt": "a" * 5000, "b.txt": "b\n"})
    blob = git("rev-parse", "HEAD:a.txt", cwd=repo).strip()
    loose = repo / ".git" / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(loose.read_bytes()[:20])
    with pytest.raises(CloneError) as caught:
        clone(git_server.url("org/broken"), tmp_path / "c", max_file_size=LIMIT * 100, timeout=30)
    assert caught.value.reason == "repository_corrupt", str(caught.value)


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with ``status`` (and ``location``), recording the paths asked for."""

    status = 404
    location = ""
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(self.status)
        if self.location:
            self.send_header("Location", self.location + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _http(status: int, location: str = "") -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("H", (_Recorder,), {"status": status, "location": location, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_git_does_not_follow_a_redirect_off_the_allowed_host(tmp_path: Path) -> None:
    with (
        _http(404) as (elsewhere, asked),
        _http(301, elsewhere) as (allowed, _),
        pytest.raises(CloneError) as caught,
    ):
        clone(f"{allowed}/org/repo.git", tmp_path / "c", max_file_size=LIMIT, timeout=30)
    assert asked == [], f"git followed the redirect to {elsewhere}: {asked}"
    assert caught.value.reason == "redirected", str(caught.value)
