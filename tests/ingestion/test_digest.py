"""ingestion.digest: equal to stock gitingest, deterministic, bounded, and safe on hostile
repositories. Digests are read from a repository's objects (``repo/.git`` or a bare clone)."""

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
    digest_repository,
    write_digest,
)
from ingestion.ignore import IgnoreMatcher
from tests.support.git import bulk_repo, head, make_repo

ROOT = Path(__file__).resolve().parents[2]
LABEL = "owner/name"
SECRET = "TOPSECRET-7f3a9c"

# gitingest 0.3.1 matches with pathspec's "gitwildmatch", deprecated in pathspec 1.x.
pytestmark = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")

# Stock gitingest 0.3.1 (a test dependency only), untouched, in a fresh process, on a checkout;
# offline (tiktoken cannot download, fast).
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

# Ours and stock in one process under the given PYTHONHASHSEED.
SEEDED = r"""
import json, sys
from pathlib import Path
from ingestion.digest import DigestSettings, digest_repository
ours = digest_repository(Path(sys.argv[1]) / ".git", DigestSettings(), label="owner/name").text
import gitingest
from loguru import logger
logger.remove()
summary, tree, content = gitingest.ingest(sys.argv[1], max_file_size=524288)
print(json.dumps({"ours": ours, "stock": summary + "\n" + tree + "\n" + content}))
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


def normalise_stock(text: str, checkout: Path) -> str:
    """The documented differences: the repository label, U+FFFD for non-UTF-8 names, a
    symlink's whole target (stock shows its last component), and a notebook's path in the
    repository (stock names the absolute path of the checkout)."""
    first, _, rest = text.partition("\n")
    assert first.startswith("Directory: ")
    text = f"Repository: {LABEL}\n{rest}"
    text = text.replace("up -> setup.py\n", "up -> ../setup.py\n")
    text = text.replace(f"Invalid JSON in notebook: {checkout}/", "Invalid JSON in notebook: ")
    return text.encode(errors="surrogateescape").decode(errors="replace")


def digest(repo: Path, max_file_size: int = 524288, max_total_size: int = 8 << 20) -> Digest:
    """The digest of a work tree's ``HEAD`` (``repo/.git``) or of a bare repository."""
    git_dir = repo / ".git" if (repo / ".git").is_dir() else repo
    return digest_repository(git_dir, DigestSettings(max_file_size, max_total_size), label=LABEL)


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "source": ["# Title\n", "text"]},
        {
            "cell_type": "code",
            "source": ["print('hi')\n"],
            "outputs": [
                {"output_type": "stream", "text": ["hi\n"]},
                {"output_type": "stream", "text": "chars"},  # a str: gitingest splits it
                {"output_type": "execute_result", "data": {"text/plain": ["42"]}},
                {"output_type": "error", "ename": "E", "evalue": "bad"},
            ],
        },
        {"cell_type": "raw", "source": []},
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def rich_repo(base: Path) -> Path:
    """Most shapes gitingest handles, committed with git (the checkout keeps its .git)."""
    files: dict[str, str | bytes] = {
        "README.md": "# Readme\n",
        "setup.py": "print('setup')\n",
        ".hidden.cfg": "x=1\n",
        ".gitignore": "*.tmp\nsecret_dir/\n/rootonly.txt\n",
        "notes.tmp": "ignored by .gitignore\n",
        "rootonly.txt": "ignored: root-anchored pattern\n",
        "src/app.py": "def main():\n    return 1\n",
        "src/lib/util.js": "export const x = 1;\r\nexport const y = 2;\r\n",
        "src/lib/old-mac.txt": "one\rtwo\r",
        "src/lib/.gitignore": "generated.js\n",
        "src/lib/generated.js": "ignored by nested .gitignore\n",
        "src/empty.txt": "",
        "secret_dir/key.txt": "ignored dir\n",
        "node_modules/pkg/index.js": "ignored by default patterns\n",
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        "assets/blob.dat": b"\x00\x01\x02\xff\xfe" * 50,
        "assets/latin1-late.txt": b"a" * 2000 + b"caf\xe9\n",
        "assets/split-char.txt": b"a" * 1023 + "é".encode() + b" rest\n",  # "é" at the chunk end
        "docs/Readme.rst": "nested readme\n",
        "huge.txt": "x" * 600_000,
        "analysis.ipynb": json.dumps(NOTEBOOK),
        "broken.ipynb": "{not json",
        "list.ipynb": "[1, 2]",
        "build/out.txt": "ignored build dir\n",
        "run.sh": "#!/bin/sh\necho run\n",
        os.fsdecode(b"caf\xe9-\xff.txt"): "non-UTF-8 name\n",
        os.fsdecode(b"dir-\xfe/inner.txt"): "inside a non-UTF-8 dir\n",
    }
    repo = make_repo(
        base / "owner-name",
        files,
        symlinks={"link-to-readme": "README.md", "src/up": "../setup.py"},
    )
    (repo / "run.sh").chmod(0o755)
    subprocess.run(["git", "commit", "-qam", "exec"], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rich_repo(tmp_path_factory.mktemp("rich"))


def test_digest_equals_stock_gitingest(tmp_path: Path, rich: Path) -> None:
    empty = make_repo(tmp_path / "empty" / "owner-name")  # git init, no commit
    nested = make_repo(tmp_path / "nested" / "owner-name", {"a/b/c.txt": "nested only\n"})

    stock = run_stock(rich, empty, nested)

    for repo in (rich, empty, nested):
        ours = digest(repo)
        assert ours.text == normalise_stock(stock[str(repo)], repo), repo
        assert ours.bytes == len(ours.text.encode())
        assert not ours.capped
        assert "Estimated tokens" not in ours.text


def test_default_patterns_are_gitingests() -> None:
    from gitingest.utils.ignore_patterns import DEFAULT_IGNORE_PATTERNS

    from ingestion.gitingest_text import DEFAULT_IGNORE_PATTERNS as OURS

    assert OURS == DEFAULT_IGNORE_PATTERNS


def test_the_job_never_imports_gitingest(rich: Path) -> None:
    """Digesting needs neither gitingest nor what it drags in (loguru, tiktoken)."""
    script = (
        "import sys; from pathlib import Path\n"
        "from ingestion.digest import DigestSettings, digest_repository, init_worker\n"
        "init_worker()\n"
        f"d = digest_repository(Path({str(rich / '.git')!r}), DigestSettings(), label='o/n')\n"
        "print(d.files, sorted(m for m in ('gitingest', 'loguru', 'tiktoken') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=offline_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" ", 1) == ["19", "[]\n"]


def test_digest_content_shapes(rich: Path) -> None:
    result = digest(rich)
    assert result.files == 19 and result.commit == head(rich)
    text = result.text
    assert text.startswith(f"Repository: {LABEL}\nFiles analyzed: 19\n\nDirectory structure:\n")
    assert "└── owner-name/\n" in text
    assert "FILE: assets/blob.dat\n" + "=" * 48 + "\n[Binary file]" in text
    assert "FILE: assets/split-char.txt\n" + "=" * 48 + "\n[Binary file]" in text
    assert "FILE: src/empty.txt\n" + "=" * 48 + "\n[Empty file]" in text
    assert "Error reading file with 'UTF-8'" in text  # decodes like stock on a UTF-8 machine
    assert "export const x = 1;\nexport const y = 2;\n" in text  # universal newlines
    assert "one\ntwo\n" in text
    assert "huge.txt" not in text  # over max_file_size: left out, as gitingest does
    assert "print('hi')" in text and "#   hi\n\n#   c\n#   h" in text  # notebook reader
    assert "Error processing notebook: Invalid JSON in notebook: broken.ipynb" in text
    assert "FILE: run.sh" in text  # executable files are files
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
        commit="",
    )


def test_a_partial_clone_is_digested_without_asking_for_what_it_lacks(tmp_path: Path) -> None:
    """Asking git for a blob the partial-clone filter left out makes it try the promisor
    remote (and die, with every protocol forbidden): the digest must never ask."""
    from ingestion.clone import clone

    repo = make_repo(tmp_path / "src", {"small.txt": "small\n", "big.txt": "B" * 5000})
    fetched = clone(str(repo), tmp_path / "bare", max_file_size=1000, timeout=30)
    held = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objectsize)"],
        cwd=fetched.path, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "5000" not in held  # the filter did leave it out
    result = digest_repository(fetched.path, DigestSettings(1000), label=LABEL)
    assert "FILE: small.txt" in result.text and "big.txt" not in result.text
    assert result.commit == head(repo)


def test_max_file_size_setting(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"small.txt": "s" * 10, "big.txt": "b" * 100})
    assert "big.txt" in digest(repo).text
    limited = digest(repo, max_file_size=50)
    assert "big.txt" not in limited.text and "small.txt" in limited.text
    assert not limited.capped  # a per-file rule, gitingest's own: not a cap


def test_negated_patterns_are_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        ".gitignore": "".join(f"dir{i}/*.txt\n!dir{i}/keep.txt\n" for i in range(8))
    }
    for i in range(8):
        files[f"dir{i}/keep.txt"] = f"kept {i}\n"
        files[f"dir{i}/drop.txt"] = f"dropped {i}\n"
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
        runs.append(json.loads(stdout))

    assert runs[0]["ours"] == runs[1]["ours"]
    assert runs[0]["stock"] != runs[1]["stock"]  # the fixture does trip stock gitingest
    text = runs[0]["ours"]
    for i in range(8):  # later rules win, as in git
        assert f"kept {i}" in text and f"dropped {i}" not in text


def test_symlinks_show_their_own_target(tmp_path: Path) -> None:
    """Stock shows ``passwd -> passwd`` and ``root -> `` (the target's last component)."""
    repo = make_repo(
        tmp_path / "repo",
        {"a.txt": "a\n"},
        symlinks={"passwd": "/etc/passwd", "root": "/", "up": "../a.txt", "dir/in": "../a.txt"},
    )
    text = digest(repo).text
    for line in ("├── passwd -> /etc/passwd\n", "├── root -> /\n", "└── up -> ../a.txt\n"):
        assert line in text, text
    assert "SYMLINK: passwd -> /etc/passwd\n" in text and "SYMLINK: root -> /\n" in text
    assert "SYMLINK: dir/in -> ../a.txt\n" in text
    assert "root:" not in text  # nothing a link points at is read


def test_symlinks_never_leak_outside_content(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.txt").write_text(SECRET)
    (outside / "ignore").write_text("*.txt\n")
    repo = make_repo(
        tmp_path / "repo",
        {"notes.txt": "visible notes\n", "sub/readme.md": "hello\n", "rules": "*.md\n"},
        symlinks={
            "abs-secret": str(outside / "secret.txt"),
            "rel-secret.txt": "../outside/secret.txt",
            "sub/dir-link": str(outside / "dir"),
            ".gitignore": str(outside / "ignore"),  # read by stock gitingest, not by us
            ".gitingestignore": "rules",  # inside, but a link all the same: git does not follow
        },
    )
    text = digest(repo).text
    assert SECRET not in text
    assert "inner.txt" not in text
    assert f"SYMLINK: abs-secret -> {outside}/secret.txt" in text
    assert "visible notes" in text  # the outside ignore file was not applied
    assert "hello" in text  # nor the linked one inside


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
    assert default.startswith("v2-") and len(default) == 15
    assert DigestSettings(1000).fingerprint() != default
    assert DigestSettings(max_total_size=1000).fingerprint() != default


# The fingerprint of the default settings with today's pins. Changing it redoes all ~20,000
# repositories: do it on purpose (a pin or INGEST_VERSION changed), never by accident.
DEFAULT_FINGERPRINT = "v2-748ddfe353d0"


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
    with pytest.raises(RuntimeError, match=r"pinned to pathspec==1\.1\.1"):
        digest_module.check_pins()


def test_written_digest_is_the_same_digest(tmp_path: Path, rich: Path) -> None:
    text = digest(rich).text.encode()
    written = write_digest(rich / ".git", DigestSettings(), label=LABEL, out=tmp_path / "d.md")
    assert written.path.read_bytes() == text
    assert (written.size, written.sha256) == (len(text), hashlib.sha256(text).hexdigest())
    assert written.files == 19 and not written.capped and written.metadata() == {}
    assert written.commit == head(rich)


# -- caps ----------------------------------------------------------------------------------


def test_a_cap_keeps_root_files_and_readmes_first(tmp_path: Path) -> None:
    """nhsx/nhsx-website: Django migrations under app/ used the budget in walk order and the
    small root files were left out."""
    root_files = ["buildspec.yml", "docker-compose.yml", "docker-compose.dev.yml",
                  "docker-entrypoint.sh", "README.md"]  # fmt: skip
    files: dict[str, str | bytes] = {name: f"{name} at the root\n" * 150 for name in root_files}
    files |= {f"app/migrations/{i:04d}_auto.py": f"# {i}\n" + "x = 1\n" * 700 for i in range(40)}
    files |= {"app/models.py": "class M: pass\n", "docs/guide/README.md": "how to\n"}
    repo = make_repo(tmp_path / "repo", files)
    whole = digest(repo)
    assert not whole.capped and whole.files == 47

    capped = digest(repo, max_total_size=60_000)
    assert capped.capped and capped.bytes <= 60_000
    for name in [*root_files, "docs/guide/README.md", "app/models.py"]:
        assert f"FILE: {name}\n" in capped.text, name
    kept = capped.text.count("FILE: app/migrations/")
    assert 0 < kept < 40 and capped.files == 7 + kept
    # Smaller before larger among equals in depth: the ones kept are the smallest (0000-0009
    # are one byte shorter than 0010-0039).
    assert "FILE: app/migrations/0000_auto.py" in capped.text
    left = 40 - kept
    assert capped.text.startswith(
        f"Repository: {LABEL}\nFiles analyzed: {capped.files}\n"
        f"Files left out: {left} of 47, to keep this digest within 60000 bytes (kept first: "
        "root files and READMEs, then shallower, then smaller files)\n"
        f"Left out from: app/migrations/ ({left})\n\nDirectory structure:\n"
    )
    assert capped.cap is not None and capped.cap.metadata() == {
        "capped": "max_total_size",
        "files_left_out": str(left),
        "left_out_from": f"app/migrations/ ({left})",
    }


def test_a_capped_digest_is_as_full_as_it_can_be(tmp_path: Path) -> None:
    files = {f"src/module_with_a_rather_long_name_{i:02d}.py": f"x = {i}\n" for i in range(40)}
    repo = make_repo(tmp_path / "repo", files)
    for cap in (1500, 2300, 4000):
        capped = digest(repo, max_total_size=cap)
        assert capped.capped and capped.bytes <= cap, cap
        assert 0 < capped.files < 40
        assert capped.text.count("FILE: src/") == capped.files
        # No file left out would have fitted: the next one in order of need is too big.
        bigger = digest(repo, max_total_size=capped.bytes + 250)
        assert bigger.files <= capped.files + 1, cap


def test_a_cap_names_the_directories_that_lost_files(tmp_path: Path) -> None:
    files = {f"d{d:02d}/sub/f{i}.txt": "y" * 2000 for d in range(14) for i in range(d + 1)}
    repo = make_repo(tmp_path / "repo", {"README.md": "hi\n", **files})
    capped = digest(repo, max_total_size=20_000)
    assert capped.cap is not None
    where = capped.cap.where
    losers = sorted({p.rpartition("/")[0] for p in files if f"FILE: {p}\n" not in capped.text})
    assert len(losers) > 10
    parts = where.split(", ")
    more = len(losers) - 10
    assert parts[-1] == f"and {more} more director{'y' if more == 1 else 'ies'}", where
    assert parts[:3] == ["d13/sub/ (14)", "d12/sub/ (13)", "d11/sub/ (12)"], where  # most first
    assert len(parts) == 11
    assert f"Left out from: {where}\n" in capped.text
    assert capped.cap.left_out + capped.files == 1 + len(files)


def test_written_capped_digest_carries_its_cap(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {f"f{i}.txt": str(i) * 3000 for i in range(4)})
    settings = DigestSettings(max_total_size=7000)
    written = write_digest(repo / ".git", settings, label=LABEL, out=tmp_path / "d.md")
    in_memory = digest(repo, max_total_size=7000)
    assert written.path.read_bytes() == in_memory.text.encode()
    assert written.size <= 7000 and written.capped and written.files == 2
    assert written.metadata() == {
        "capped": "max_total_size", "files_left_out": "2", "left_out_from": "./ (2)",
    }  # fmt: skip


def test_a_file_thirty_directories_deep_is_there(tmp_path: Path) -> None:
    """gitingest stops at 20 levels without a word."""
    deep = "/".join(f"d{i}" for i in range(30)) + "/deep.txt"
    repo = make_repo(tmp_path / "repo", {"top.txt": "top\n", deep: "thirty levels down\n"})
    result = digest(repo)
    assert not result.capped and result.files == 2
    assert f"FILE: {deep}\n" in result.text and "thirty levels down" in result.text
    assert " " * 4 * 30 + "└── deep.txt\n" in result.text.replace("│", " ")


@pytest.fixture(scope="module")
def fifty_thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("big")
    files = [("README.md", b"# big\n")]
    files += [(f"pkg{i % 50:02d}/mod{i % 7}/f{i:05d}.txt", b"line %d\n" % i) for i in range(50_000)]
    return bulk_repo(base / "big.git", files)


def test_fifty_thousand_files_are_whole_or_capped_with_the_reason(fifty_thousand: Path) -> None:
    """gitingest stopped at 10,000 files and said nothing."""
    capped = digest(fifty_thousand)  # 8 MiB cannot hold 50,001 files' headers and tree lines
    assert capped.cap is not None and capped.bytes <= 8 << 20
    assert capped.cap.reason == "max_total_size"
    assert capped.files + capped.cap.left_out == 50_001 and capped.files > 10_000
    assert capped.text.startswith(
        f"Repository: {LABEL}\nFiles analyzed: {capped.files}\nFiles left out: "
        f"{capped.cap.left_out} of 50001, to keep this digest within {8 << 20} bytes"
    )
    assert "FILE: README.md\n" in capped.text

    whole = digest(fifty_thousand, max_total_size=64 << 20)
    assert not whole.capped and whole.files == 50_001
    assert "FILE: pkg49/mod5/f49999.txt\n" in whole.text


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
    line = b"0123456789abcdef" * 4 + b"\n"
    files = [
        (f"d{d}/f{f}.txt", line * 7_500 + b"%d %d\n" % (d, f)) for d in range(8) for f in range(8)
    ]
    repo = bulk_repo(tmp_path / "big.git", files)  # ~490 KB each
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(repo), str(tmp_path / "out.md")],
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


# -- the ignore matcher --------------------------------------------------------------------

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
    base = ["*.log", "build/", "node_modules"]
    spec = PathSpec.from_lines("gitwildmatch", [*base, *lines])
    matcher = IgnoreMatcher([*base, *lines])
    extended = IgnoreMatcher(base).extended(lines)  # the defaults compiled once, then the repo's
    for parts in paths:
        rel = "/".join(parts)
        assert matcher(rel) == extended(rel) == spec.match_file(rel), (lines, rel)
