"""The files of a digest as a tree, its text, and the exact size of its text for a subset.

Nodes are kept in gitingest's order (``ingestion.gitingest_text.entry_order``). Every walk here
is iterative: a repository can nest directories deeper than Python's recursion limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingestion.gitingest_text import child_prefix, tree_line

TREE_HEADER = "Directory structure:\n"
# Bytes of a tree line besides its name: the root's indent, the connector, the newline.
_LINE = len("    ") + len("├── ".encode()) + len("\n")
_SURROGATES = re.compile("[\ud800-\udfff]+")


@dataclass
class Leaf:
    """A file or symlink of the digest."""

    path: str  # in the repository, "/"-separated, file-system decoded (surrogate escapes)
    name: str
    oid: str
    link: str | None  # a symlink's target text; None for a regular file
    n: int = 0  # position in the digest (gitingest's order)

    @property
    def depth(self) -> int:
        return self.path.count("/") + 1


@dataclass
class Dir:
    name: str
    path: str
    children: list[Dir | Leaf] = field(default_factory=list)


def display(node: Dir | Leaf) -> str:
    """A node's name in the tree: ``dir/``, ``file``, ``link -> target``."""
    if isinstance(node, Dir):
        return node.name + "/"
    return node.name if node.link is None else f"{node.name} -> {node.link}"


def leaves(root: Dir) -> list[Leaf]:
    """The files of the digest in its order (depth first), numbered."""
    found: list[Leaf] = []
    stack = [iter(root.children)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif isinstance(child, Dir):
            stack.append(iter(child.children))
        else:
            child.n = len(found)
            found.append(child)
    return found


def dirs(root: Dir) -> list[Dir]:
    """Every directory, each before its subdirectories."""
    found = [root]
    for node in found:
        found.extend(c for c in node.children if isinstance(c, Dir))
    return found


def pruned(root: Dir, kept: set[int]) -> Dir:
    """A copy of ``root`` with only the files numbered in ``kept``, and the folders holding any."""
    copies: dict[int, Dir] = {}
    for node in reversed(dirs(root)):
        children: list[Dir | Leaf] = []
        for child in node.children:
            if isinstance(child, Leaf):
                if child.n in kept:
                    children.append(child)
            elif copies[id(child)].children:
                children.append(copies[id(child)])
        copies[id(node)] = Dir(node.name, node.path, children)
    return copies[id(root)]


def tree_text(root: Dir) -> str:
    """gitingest's ``_create_tree_structure`` of ``root``, after ``Directory structure:``."""
    lines = [TREE_HEADER, tree_line("", True, display(root))]
    stack = [(root.children, 0, child_prefix("", True))]
    while stack:
        children, index, prefix = stack.pop()
        if index == len(children):
            continue
        child = children[index]
        last = index == len(children) - 1
        stack.append((children, index + 1, prefix))
        lines.append(tree_line(prefix, last, display(child)))
        if isinstance(child, Dir):
            stack.append((child.children, 0, child_prefix(prefix, last)))
    return "".join(lines)


def printable(text: str) -> str:
    """Replace the undecodable bytes of non-UTF-8 file names (surrogate escapes) with U+FFFD."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return _SURROGATES.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    try:
        return match.group().encode(errors="surrogateescape").decode(errors="replace")
    except UnicodeEncodeError:  # a lone surrogate from JSON (notebooks), not from a file name
        return "\ufffd" * len(match.group())


class TreeSize:
    """The exact size of the tree text (encoded, printable) of a growing set of files.

    A line at depth d is ``4 + 10 + name + 1`` bytes plus, for each folder above it below the
    root, 4 bytes (``"    "``) when that folder is the last of its parent's children shown,
    else 6 (``"│   "``). So the tree is the sum of its lines' own bytes plus, for each folder
    shown, the lines inside it times 4 or 6. Adding a file adds its line and those of new
    folders, more lines inside each folder above it, and may make a new child the last of its
    parent, turning the previous last one's 4 into 6. :meth:`cost` is that, in O(depth).
    """

    def __init__(self, root: Dir) -> None:
        self.index: dict[str, int] = {}  # a node's position among its parent's children
        self.is_dir: set[str] = set()
        for node in dirs(root):
            for i, child in enumerate(node.children):
                self.index[child.path] = i
                if isinstance(child, Dir):
                    self.is_dir.add(child.path)
        self.inside: dict[str, int] = {"": 0}  # folders shown: lines inside them
        self.last: dict[str, str] = {}  # folder shown -> its last child shown
        self.base = len(TREE_HEADER) + len(printable(tree_line("", True, display(root))).encode())
        self.bytes = self.base

    def cost(self, leaf: Leaf) -> int:
        """How many bytes the tree grows by if ``leaf`` is shown too."""
        return self._change(leaf, apply=False)

    def add(self, leaf: Leaf) -> None:
        self.bytes += self._change(leaf, apply=True)

    def _change(self, leaf: Leaf, *, apply: bool) -> int:
        parts = leaf.path.split("/")
        path = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]  # folders, then leaf
        first_new = next(k for k, p in enumerate(path) if p not in self.inside)
        added = len(path) - first_new  # new lines: new folders and the leaf
        shown = [*(f"{name}/" for name in parts[first_new:-1]), display(leaf)]
        grown = sum(_LINE + len(printable(name).encode()) for name in shown)
        for p in path[:first_new]:  # folders already shown get ``added`` more lines
            grown += added * self._indent(p)
        for k in range(first_new, len(path)):
            grown += self._place(path[k], path[k - 1] if k else "", len(path) - 1 - k, apply)
        if apply:
            for p in path[:first_new]:
                self.inside[p] += added
        return grown

    def _indent(self, folder: str) -> int:
        return 4 if self.last[folder.rpartition("/")[0]] == folder else 6

    def _place(self, child: str, parent: str, below: int, apply: bool) -> int:
        """Bytes from showing the new ``child`` (with ``below`` new lines inside it) in
        ``parent``: its indent times those lines, and a previous last child turned non-last."""
        previous = self.last.get(parent)
        grown = 0
        is_last = previous is None or self.index[child] > self.index[previous]
        if is_last and previous is not None and previous in self.is_dir:
            grown += 2 * self.inside[previous]
        grown += below * (4 if is_last else 6)
        if apply:
            if is_last:
                self.last[parent] = child
            if child in self.is_dir:
                self.inside[child] = below
        return grown
