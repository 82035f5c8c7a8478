"""The parts of gitingest 0.3.1 that shape a digest's text, owned by the job.

What a digest looks like is gitingest 0.3.1's output; the job no longer imports gitingest, so an
upgrade of it can change nothing here. This module holds what the digest needs of it, and only
that: the default ignore patterns, the order of a directory's entries, the tree's lines, the
per-file header and how a file's bytes become text (including Jupyter notebooks). Everything
else (walking, limits, reading files) is the job's own (``ingestion.digest``). The test
``tests/ingestion/test_digest.py::test_digest_equals_stock_gitingest`` compares the result
byte for byte with stock gitingest 0.3.1 on the same commit.

Derived from gitingest 0.3.1 (src/gitingest/utils/ignore_patterns.py, schemas/filesystem.py,
utils/file_utils.py, utils/notebook.py, output_formatter.py), whose licence follows:

    MIT License

    Copyright (c) 2024 Romain Courtois

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
    SOFTWARE.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

GITINGEST_VERSION = "0.3.1"

# gitingest's DEFAULT_IGNORE_PATTERNS (a set there; ingestion.ignore sorts them).
DEFAULT_IGNORE_PATTERNS = frozenset(
    {
        "*.pyc", "*.pyo", "*.pyd", "__pycache__", ".pytest_cache", ".coverage", ".tox", ".nox",
        ".mypy_cache", ".ruff_cache", ".hypothesis", "poetry.lock", "Pipfile.lock",
        "node_modules", "bower_components", "package-lock.json", "yarn.lock", ".npm", ".yarn",
        ".pnpm-store", "bun.lock", "bun.lockb",
        "*.class", "*.jar", "*.war", "*.ear", "*.nar", ".gradle/", "build/", ".settings/",
        ".classpath", "gradle-app.setting", "*.gradle", ".project",
        "*.o", "*.obj", "*.dll", "*.dylib", "*.exe", "*.lib", "*.out", "*.a", "*.pdb",
        ".build/", "*.xcodeproj/", "*.xcworkspace/", "*.pbxuser", "*.mode1v3", "*.mode2v3",
        "*.perspectivev3", "*.xcuserstate", "xcuserdata/", ".swiftpm/",
        "*.gem", ".bundle/", "vendor/bundle", "Gemfile.lock", ".ruby-version", ".ruby-gemset",
        ".rvmrc",
        "Cargo.lock", "**/*.rs.bk", "target/", "pkg/", "obj/", "*.suo", "*.user",
        "*.userosscache", "*.sln.docstates", "*.nupkg", "bin/",
        ".git", ".svn", ".hg", ".gitignore", ".gitattributes", ".gitmodules",
        "*.svg", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.ico", "*.pdf", "*.mov", "*.mp4",
        "*.mp3", "*.wav",
        "venv", ".venv", "env", ".env", "virtualenv",
        ".idea", ".vscode", ".vs", "*.swo", "*.swn", ".settings", "*.sublime-*",
        "*.log", "*.bak", "*.swp", "*.tmp", "*.temp", ".cache", ".sass-cache", ".eslintcache",
        ".DS_Store", "Thumbs.db", "desktop.ini",
        "build", "dist", "target", "out", "*.egg-info", "*.egg", "*.whl", "*.so",
        "site-packages", ".docusaurus", ".next", ".nuxt",
        "*.db", "*.sqlite", "*.sqlite3",
        "*.min.js", "*.min.css", "*.map", "*.tfstate*", "vendor/", "digest.txt", "*.bin",
    }
)  # fmt: skip

SEPARATOR = "=" * 48
# gitingest reads this much of a file to tell text from binary.
_CHUNK_SIZE = 1024
# gitingest tries locale.getpreferredencoding() first: "UTF-8" on a UTF-8 machine (the image's
# C.UTF-8). Any chunk it gets to try encodings on decodes as UTF-8, so this is the one it names.
_ENCODING = "UTF-8"


def entry_order(name: str, is_file: bool) -> tuple[int, str]:
    """gitingest's ``sort_children`` key: READMEs, files, hidden files, then everything else
    (directories and symlinks), hidden last; case-insensitive, stable for ties."""
    lower = name.lower()
    if is_file:
        if lower == "readme" or lower.startswith("readme."):
            return (0, lower)
        return (1 if not lower.startswith(".") else 2, lower)
    return (3 if not lower.startswith(".") else 4, lower)


def summary(owner: str, name: str, files: int) -> str:
    """gitingest's summary of a remote repository (no branch, commit or subpath lines)."""
    return f"Repository: {owner}/{name}\nFiles analyzed: {files}\n"


def tree_line(prefix: str, is_last: bool, display: str) -> str:
    return f"{prefix}{'└── ' if is_last else '├── '}{display}\n"


def child_prefix(prefix: str, is_last: bool) -> str:
    return prefix + ("    " if is_last else "│   ")


def file_block(kind: str, header: str, content: str) -> str:
    """``FileSystemNode.content_string``: ``kind`` is ``FILE`` or ``SYMLINK``."""
    return "\n".join([SEPARATOR, f"{kind}: {header}", SEPARATOR, content]) + "\n\n"


def file_text(path: str, data: bytes) -> str:
    """``FileSystemNode.content`` of a regular file holding ``data``, read as gitingest reads it
    on a UTF-8 machine: text mode, so universal newlines (``\\r\\n`` and ``\\r`` become ``\\n``)."""
    if _suffix(path) == ".ipynb":
        try:
            return notebook_text(path, data)
        except Exception as exc:  # gitingest shows any failure as the file's text
            return f"Error processing notebook: {exc}"
    chunk = data[:_CHUNK_SIZE]
    if chunk == b"":
        return "[Empty file]"
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return "[Binary file]"
    try:
        return _universal_newlines(data.decode(_ENCODING))
    except UnicodeDecodeError as exc:
        return f"Error reading file with {_ENCODING!r}: {exc}"


def _suffix(path: str) -> str:
    """``PurePosixPath(path).suffix`` (a leading dot starts no suffix), without its cost."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _universal_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


class InvalidNotebookError(Exception):
    pass


def notebook_text(path: str, data: bytes) -> str:
    """gitingest's ``process_notebook``: the notebook as a Python script, outputs as comments.

    gitingest names the file's absolute path in the invalid-JSON message; here it is the path
    in the repository, so the text does not depend on where anything was stored."""
    try:
        notebook: Any = json.loads(_universal_newlines(data.decode("utf-8")))
    except json.JSONDecodeError as exc:
        raise InvalidNotebookError(f"Invalid JSON in notebook: {path}") from exc
    worksheets = notebook.get("worksheets")
    if worksheets:
        cells = list(chain.from_iterable(ws["cells"] for ws in worksheets))
    else:
        cells = notebook["cells"]
    result = ["# Jupyter notebook converted to Python script."]
    for cell in cells:
        text = _cell_text(cell)
        if text:
            result.append(text)
    return "\n\n".join(result) + "\n"


def _cell_text(cell: Any) -> str | None:
    cell_type = cell["cell_type"]
    if cell_type not in ("markdown", "code", "raw"):
        raise ValueError(f"Unknown cell type: {cell_type}")
    text: str = "".join(cell["source"])
    if not text:
        return None
    if cell_type in ("markdown", "raw"):
        return f'"""\n{text}\n"""'
    outputs = cell.get("outputs")
    if outputs:
        lines: list[str] = []
        for output in outputs:
            lines += _output_lines(output)  # a str extends by characters, as in gitingest
        text += "\n# Output:\n#   " + "\n#   ".join(lines)
    return text


def _output_lines(output: Any) -> Any:
    output_type = output["output_type"]
    if output_type == "stream":
        return output["text"]
    if output_type in ("execute_result", "display_data"):
        return output["data"]["text/plain"]
    if output_type == "error":
        return [f"Error: {output['ename']}: {output['evalue']}"]
    raise ValueError(f"Unknown output type: {output_type}")
