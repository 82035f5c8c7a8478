"""ingestion.digest: equal to stock gitingest, deterministic, and safe on hostile checkouts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pathspec import PathSpec

from ingestion.digest import (
    Digest,
    DigestSettings,
    digest_checkout,
    write_digest,
)
from ingestion.ignore import IgnoreMatcher
from tests.support.git import make_repo

ROOT = Path(__file__).resolve().parents[2]
LABEL = "owner/name"
SECRET = "TOPSECRET-7f3a9c"

# gitingest 0.3.1 matches with pathspec's "gitwildmatch", deprecated in pathspec 1.x.
pytestmark = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")

# Stock gitingest, untouched, in a fresh process; offline (tiktoken cannot download, fast).
STOCK = r"""
import json, sys
import gitingest
from loguru import logger
logger.remove()
out = {}
for path in sys.argv[1:]:
    summary, tree, content = gitingest.ingest(path, max_file_size=524288)
    out[path] = summary + "\n" + tree + "\n" + content
sys.stdout.write(json.dumps(out))
"""

# Ours and stock in one process under the given PYTHONHASHSEED, with the caller's own logging
# set up first: gitingest must neither print anything nor take that logging over.
SEEDED = r"""
import json, logging, sys
from pathlib import Path
logging.basicConfig(stream=sys.stdout, format="LOG %(message)s", level=logging.INFO)
from ingestion.digest import DigestSettings, digest_checkout, init_worker
init_worker()
ours = digest_checkout(Path(sys.argv[1]), DigestSettings(), label="owner/name").text
import gitingest
summary, tree, content = gitingest.ingest(sys.argv[1], max_file_size=524288)
print(json.dumps({"ours": ours, "stock": summary + "\n" + tree + "\n" + content}))
logging.getLogger("job").info("still mine")
"""


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(
        PYTHONPATH=str(ROOT),
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        TIKTOKEN_CACHE_DIR=os.devnull,
    )
    return env


def run_stock(*paths: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", STOCK, *map(str, paths)],
        env=offline_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def normalise_stock(text: str) -> str:
    """The documented differences: the repository label, and U+FFFD for non-UTF-8 names."""
    first, _, rest = text.partition("\n")
    assert first.startswith("Directory: ")
    text = f"Repository: {LABEL}\n{rest}"
    return text.encode(errors="surrogateescape").decode(errors="replace")


def digest(path: Path, max_file_size: int = 524288) -> Digest:
    return digest_checkout(path, DigestSettings(max_file_size), label=LABEL)


def rich_repo(base: Path) -> Path:
    """Most shapes gitingest handles, committed with git (the checkout keeps its .git)."""
    notebook = {
        "cells": [{"cell_type": "code", "source": ["print('hi')\n"], "outputs": []}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    deep = "/".join(f"d{i}" for i in range(22)) + "/deep.txt"
    files: dict[str, str | bytes] = {
        "README.md": "# Readme\n",
        "setup.py": "print('setup')\n",
        ".hidden.cfg": "x=1\n",
        ".gitignore": "*.tmp\nsecret_dir/\n/rootonly.txt\n",
        "notes.tmp": "ignored by .gitignore\n",
        "rootonly.txt": "ignored: root-anchored pattern\n",
        "src/app.py": "def main():\n    return 1\n",
        "src/lib/util.js": "export const x = 1;\r\nexport const y = 2;\r\n",
        "src/lib/.gitignore": "generated.js\n",
        "src/lib/generated.js": "ignored by nested .gitignore\n",
        "src/empty.txt": "",
        "secret_dir/key.txt": "ignored dir\n",
        "node_modules/pkg/index.js": "ignored by default patterns\n",
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        "assets/blob.dat": b"\x00\x01\x02\xff\xfe" * 50,
        "assets/latin1-late.txt": b"a" * 2000 + b"caf\xe9\n",
        "huge.txt": "x" * 600_000,
        "analysis.ipynb": json.dumps(notebook),
        "build/out.txt": "ignored build dir\n",
        deep: "past gitingest's depth limit\n",
        os.fsdecode(b"caf\xe9-\xff.txt"): "non-UTF-8 name\n",
        os.fsdecode(b"dir-\xfe/inner.txt"): "inside a non-UTF-8 dir\n",
    }
    return make_repo(
        base / "owner-name",
        files,
        symlinks={"link-to-readme": "README.md", "src/up": "../setup.py"},
    )


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rich_repo(tmp_path_factory.mktemp("rich"))


def test_digest_equals_stock_gitingest(tmp_path: Path, rich: Path) -> None:
    empty = make_repo(tmp_path / "empty" / "owner-name")  # git init, no commit
    plain = tmp_path / "plain" / "owner-name"
    (plain / "a" / "b").mkdir(parents=True)
    (plain / "a" / "b" / "c.txt").write_text("plain directory, no .git\n")

    stock = run_stock(rich, empty, plain)

    for repo in (rich, empty, plain):
        ours = digest(repo)
        assert ours.text == normalise_stock(stock[str(repo)]), repo
        assert ours.bytes == len(ours.text.encode())
        assert "Estimated tokens" not in ours.text


def test_digest_content_shapes(rich: Path) -> None:
    result = digest(rich)
    assert result.files == 13
    text = result.text
    assert text.startswith(f"Repository: {LABEL}\nFiles analyzed: 13\n\nDirectory structure:\n")
    assert "└── owner-name/\n" in text
    assert (
        "FILE: assets/blob.dat\n================================================\n[Binary file]"
        in text
    )
    assert (
        "FILE: src/empty.txt\n================================================\n[Empty file]"
        in text
    )
    assert "Error reading file with 'UTF-8'" in text  # decodes like stock on a UTF-8 machine
    assert "huge.txt" not in text  # over max_file_size: left out, as gitingest does
    assert "deep.txt" not in text  # past gitingest's depth limit
    assert "print('hi')" in text  # notebooks go through gitingest's notebook reader
    assert "SYMLINK: link-to-readme -> README.md" in text
    for ignored in ("notes.tmp", "rootonly.txt", "generated.js", "secret_dir", "node_modules"):
        assert ignored not in text
    assert ".git/" not in text and "refs/heads" not in text
    assert "FILE: caf\ufffd-\ufffd.txt" in text and "inside a non-UTF-8 dir" in text


def test_empty_repository(tmp_path: Path) -> None:
    result = digest(make_repo(tmp_path / "repo"))
    assert result == Digest(
        text=f"Repository: {LABEL}\nFiles analyzed: 0\n\nDirectory structure:\n└── owner-name/\n\n",
        files=0,
        bytes=len(result.text.encode()),
    )


def test_max_file_size_setting(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"small.txt": "s" * 10, "big.txt": "b" * 100})
    assert "big.txt" in digest(repo).text
    limited = digest(repo, max_file_size=50)
    assert "big.txt" not in limited.text and "small.txt" in limited.text


def test_negated_patterns_are_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        ".gitignore": "".join(f"dir{i}/*.txt\n!dir{i}/keep.txt\n" for i in range(8))
    }
    for i in range(8):
        files[f"dir{i}/keep.txt"] = f"kept {i}\n"
        files[f"dir{i}/drop.txt"] = f"dropped {i}\n"
    files["deep/" + "/".join(f"d{i}" for i in range(22)) + "/x.txt"] = "depth warning\n"
    repo = make_repo(tmp_path / "owner-name", files)

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SEEDED, str(repo)],
            env={**offline_env(), "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    runs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert stderr == ""  # gitingest's loguru output (depth warning) is silenced
        lines = stdout.splitlines()
        assert lines[-1] == "LOG still mine"  # the caller's logging survives the import
        runs.append(json.loads("\n".join(lines[:-1])))

    assert runs[0]["ours"] == runs[1]["ours"]
    assert runs[0]["stock"] != runs[1]["stock"]  # the fixture does trip stock gitingest
    text = runs[0]["ours"]
    for i in range(8):  # later rules win, as in git
        assert f"kept {i}" in text and f"dropped {i}" not in text


def test_symlinks_never_leak_outside_content(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.txt").write_text(SECRET)
    (outside / "ignore").write_text("*.txt\n")
    repo = make_repo(
        tmp_path / "repo",
        {"notes.txt": "visible notes\n", "sub/readme.md": "hello\n"},
        symlinks={
            "abs-secret": str(outside / "secret.txt"),
            "rel-secret.txt": "../outside/secret.txt",
            "sub/dir-link": str(outside / "dir"),
            "passwd": "/etc/passwd",
            ".gitignore": str(outside / "ignore"),  # read by stock gitingest, not by us
        },
    )
    text = digest(repo).text
    assert SECRET not in text
    assert "root:" not in text
    assert "inner.txt" not in text
    assert "SYMLINK: abs-secret -> secret.txt" in text  # listed as gitingest lists links
    assert "visible notes" in text  # the outside ignore file was not applied


def test_hostile_files_do_not_fail_the_repository(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": b"\xff\xfe*.log\nbad\\\n" + os.fsencode("caf\udce9.txt\n"),
            "app.log": "ignored\n",
            "bad\\": "never matched by the malformed pattern\n",
            os.fsdecode(b"caf\xe9.txt"): "ignored by a non-UTF-8 pattern\n",
            "ok.txt": "kept\n",
            # JSON may escape a lone surrogate, which reaches the digest through the notebook
            "lone.ipynb": '{"cells": [{"cell_type": "markdown", "source": ["x\\ud800y"]}]}',
        },
    )
    text = digest(repo).text
    assert "kept" in text
    assert "x\ufffdy" in text
    assert "app.log" not in text  # the \xff\xfe bytes stay part of the first pattern
    assert "never matched" in text
    assert "ignored by a non-UTF-8 pattern" not in text


def test_fingerprint() -> None:
    default = DigestSettings().fingerprint()
    assert default == DigestSettings(524288).fingerprint()
    assert default.startswith("v1-") and len(default) == 15
    assert DigestSettings(1000).fingerprint() != default
    assert DigestSettings(max_total_size=1000).fingerprint() != default


# The fingerprint of the default settings with today's pins. Changing it redoes all ~20,000
# repositories: do it on purpose (a pin or INGEST_VERSION changed), never by accident.
DEFAULT_FINGERPRINT = "v1-4113de92fa75"


def test_fingerprint_depends_on_pinned_inputs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image rebuild that resolves other versions of anything must keep the fingerprint:
    whatever the installed packages say, the fingerprint is the same."""
    import importlib.metadata

    import ingestion.digest as digest_module

    digest_module._fingerprint.cache_clear()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "999.0-unpinned")
    monkeypatch.setattr(digest_module, "version", lambda name: "999.0-unpinned")
    try:
        assert DigestSettings().fingerprint() == DEFAULT_FINGERPRINT
    finally:
        digest_module._fingerprint.cache_clear()
    with pytest.raises(RuntimeError, match=r"pinned to gitingest==0\.3\.1"):
        digest_module.check_pins()


def test_written_digest_is_the_same_digest(tmp_path: Path, rich: Path) -> None:
    text = digest(rich).text.encode()
    written = write_digest(rich, DigestSettings(), label=LABEL, out=tmp_path / "d.md")
    assert written.path.read_bytes() == text
    assert (written.size, written.sha256) == (len(text), hashlib.sha256(text).hexdigest())
    assert written.files == 13 and not written.capped


def test_max_total_size_leaves_files_out_like_gitingest(tmp_path: Path) -> None:
    files = {f"{c}.txt": c * 1000 for c in "abcd"} | {"e.txt": "e" * 100}
    repo = make_repo(tmp_path / "repo", files)
    full = digest_checkout(repo, DigestSettings(), label=LABEL)
    assert not full.capped and full.files == 5
    capped = digest_checkout(repo, DigestSettings(max_total_size=2900), label=LABEL)
    # In walk order, a file that would go over the cap is left out; a later small one fits.
    assert capped.capped and capped.files == 3
    for c, kept in zip("abcde", [True, True, False, False, True], strict=True):
        assert (f"FILE: {c}.txt" in capped.text) is kept, c
    assert capped.text.startswith(f"Repository: {LABEL}\nFiles analyzed: 3\n")


# A digest of ~32 MB of text, streamed to a file: the worker's peak memory must not grow with it.
MEASURE = r"""
import resource, sys
from pathlib import Path
from ingestion.digest import DigestSettings, init_worker, write_digest
init_worker()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
d = write_digest(Path(sys.argv[1]), DigestSettings(max_total_size=10**9), label="o/n",
                 out=Path(sys.argv[2]))
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(grown, d.size)
"""


def test_writing_a_digest_does_not_hold_it_in_memory(tmp_path: Path) -> None:
    tree = tmp_path / "big"
    line = b"0123456789abcdef" * 4 + b"\n"
    for d in range(8):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(8):
            (tree / f"d{d}" / f"f{f}.txt").write_bytes(line * 7_500)  # ~490 KB each
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tree), str(tmp_path / "out.md")],
        env=offline_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    grown, size = map(int, proc.stdout.split())
    assert size > 31_000_000
    assert grown < 8_000_000, (
        f"peak RSS grew by {grown / 1e6:.1f} MB for a {size / 1e6:.0f} MB digest"
    )


PATTERN_PARTS = ["a", "b", "*", "**", "?", "[ab]", ".", "x.txt"]


@settings(max_examples=60, deadline=None)
@given(
    patterns=st.lists(
        st.tuples(
            st.booleans(),
            st.booleans(),
            st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=3),
        ),
        max_size=8,
    ),
    paths=st.lists(
        st.lists(st.sampled_from(["a", "b", "x.txt", "ab", ".a"]), min_size=1, max_size=4),
        min_size=1,
        max_size=6,
    ),
)
def test_ignore_matcher_decides_like_pathspec(
    patterns: list[tuple[bool, bool, list[str]]], paths: list[list[str]]
) -> None:
    lines = [
        ("!" if neg else "") + "/".join(parts) + ("/" if slash else "")
        for neg, slash, parts in patterns
    ]
    lines = ["*.log", "build/", "node_modules", *lines]
    spec = PathSpec.from_lines("gitwildmatch", lines)
    matcher = IgnoreMatcher(lines)
    for parts in paths:
        rel = "/".join(parts)
        assert matcher(rel) == spec.match_file(rel), (lines, rel)


@pytest.mark.parametrize("cap", [1500, 2300, 4000])
def test_max_total_size_bounds_the_whole_digest(tmp_path: Path, cap: int) -> None:
    """Summary, tree and per-file headers count too: 40 small files with long names are far
    more digest than file contents, and the digest must still end up within the cap."""
    files = {f"src/module_with_a_rather_long_name_{i:02d}.py": "x = 1\n" for i in range(40)}
    repo = make_repo(tmp_path / "repo", files)
    full = digest_checkout(repo, DigestSettings(), label=LABEL)
    assert full.bytes > 4000 and not full.capped
    capped = digest_checkout(repo, DigestSettings(max_total_size=cap), label=LABEL)
    assert capped.bytes <= cap and capped.capped
    assert 0 < capped.files < 40
    assert f"Files analyzed: {capped.files}\n" in capped.text
    assert capped.text.count("FILE: src/") == capped.files
    assert capped.text.count(".py\n") == 2 * capped.files  # a tree line and a header each
    settings = DigestSettings(max_total_size=cap)
    written = write_digest(repo, settings, label=LABEL, out=tmp_path / "d")
    assert written.path.read_bytes() == capped.text.encode() and written.size <= cap
