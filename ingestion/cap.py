"""What a digest keeps when the whole of it would be over ``--max-total-size``, and what it says.

A digest that fits is whole. One that does not keeps the files a reader needs most: files at
the root and READMEs (at any depth) first, then shallower before deeper, then smaller before
larger, then by path — each file kept if it still fits, so a large file does not stop smaller
ones after it. The summary says how many files were left out and from which directories
(:class:`Cap`), and so does the object's metadata.

Sizes are exact: each file's block was measured when the whole digest was written, the tree's
size is tracked line by line (``ingestion.tree.TreeSize``), and the summary is reserved at its
largest: first with room for the longest list of directories it may name, then with room for
the longest the files still left out can produce. The result is checked against the cap once
more by rendering it. Deterministic: a function of the files and the cap only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from ingestion.tree import Dir, Leaf, TreeSize, printable

CAP_REASON = "max_total_size"
# How much of a capped digest's summary (and metadata) names the directories files left.
WHERE_DIRS = 10
WHERE_MAX_BYTES = 1000
_WIDEST = WHERE_MAX_BYTES + len(", and 9999999999 more directories")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Cap:
    """Why a digest is not whole, and what it left out."""

    reason: str  # CAP_REASON: the whole digest would have been over max_total_size
    limit: int
    left_out: int
    of: int  # files the whole digest would have had
    where: str  # "app/migrations/ (1200), docs/ (30), ./ (4), and 2 more directories"

    def text(self) -> str:
        """The lines a capped digest's summary adds after ``Files analyzed``."""
        return (
            f"Files left out: {self.left_out} of {self.of}, to keep this digest within "
            f"{self.limit} bytes (kept first: root files and READMEs, then shallower, "
            "then smaller files)\n"
            f"Left out from: {self.where}\n"
        )

    def metadata(self) -> dict[str, str]:
        return {
            "capped": self.reason,
            "files_left_out": str(self.left_out),
            "left_out_from": self.where,
        }


class Heads(Protocol):
    def summary_size(self, files: int, cap: Cap) -> int:
        """Bytes of the summary (without the newline after it)."""

    def head(self, kept: set[int], files: int, cap: Cap) -> bytes:
        """The summary and the tree of a digest keeping ``kept``, with their newlines."""


def select(
    heads: Heads, root: Dir, leaves: list[Leaf], lengths: list[int], limit: int
) -> tuple[list[Leaf], Cap]:
    """The files a capped digest keeps (in digest order) and its cap. ``lengths[n]`` is the
    size of file ``n``'s block, without the newline that separates it from the one before."""
    ranked = sorted(leaves, key=lambda leaf: need(leaf, lengths[leaf.n]))
    filler = _Filler(TreeSize(root), lengths)
    all_out = Cap(CAP_REASON, limit, len(leaves), len(leaves), "x" * _WIDEST)
    filler.fill(ranked, limit - 2 - heads.summary_size(len(leaves), all_out))
    bound = _where_bound(leaves, filler.kept, limit)
    filler.fill(ranked, limit - 2 - heads.summary_size(len(leaves), bound))
    kept = filler.kept
    while kept and _size(heads, leaves, kept, lengths, limit) > limit:  # a safety net
        kept = _trim(heads, leaves, [leaf for leaf in ranked if leaf.n in kept], lengths, limit)
    return [leaf for leaf in leaves if leaf.n in kept], where(leaves, kept, limit)


def need(leaf: Leaf, length: int) -> tuple[int, int, int, str]:
    """Files at the root and READMEs first, then shallower, then smaller (then by path)."""
    lower = leaf.name.lower()
    first = leaf.depth == 1 or lower == "readme" or lower.startswith("readme.")
    return (0 if first else 1, leaf.depth, length, leaf.path)


class _Filler:
    def __init__(self, tree: TreeSize, lengths: list[int]) -> None:
        self.tree = tree
        self.lengths = lengths
        self.kept: set[int] = set()
        self.contents = 0  # file blocks and the newlines between them

    def fill(self, ranked: list[Leaf], budget: int) -> None:
        """Keep each file of ``ranked`` not kept yet that fits within ``budget`` bytes of
        tree and contents."""
        for leaf in ranked:
            if leaf.n in self.kept:
                continue
            contents = self.contents + self.lengths[leaf.n] + (1 if self.kept else 0)
            if self.tree.bytes + contents > budget:
                continue  # cheaper than the tree's cost, and often enough
            if self.tree.bytes + self.tree.cost(leaf) + contents <= budget:
                self.tree.add(leaf)
                self.contents = contents
                self.kept.add(leaf.n)


def where(leaves: list[Leaf], kept: set[int], limit: int) -> Cap:
    """The cap of a digest keeping ``kept``: the directories that lost the most files first."""
    parts: list[str] = []
    used = 0
    ranked = _losers(leaves, kept)
    for directory, count in ranked[:WHERE_DIRS]:
        part = f"{_shown(directory)} ({count})"
        used += len(part.encode()) + 2
        if used > WHERE_MAX_BYTES:
            break
        parts.append(part)
    more = len(ranked) - len(parts)
    if more:
        parts.append(f"{'and ' if parts else ''}{more} more director{'y' if more == 1 else 'ies'}")
    left_out = sum(count for _, count in ranked)
    return Cap(CAP_REASON, limit, left_out, len(leaves), ", ".join(parts))


def _losers(leaves: list[Leaf], kept: set[int]) -> list[tuple[str, int]]:
    left = Counter(leaf.path.rpartition("/")[0] for leaf in leaves if leaf.n not in kept)
    return sorted(left.items(), key=lambda item: (-item[1], item[0]))


def _where_bound(leaves: list[Leaf], kept: set[int], limit: int) -> Cap:
    """A cap whose text is at least as long as that of any digest keeping more than ``kept``:
    counts only fall, and the directories named are among those losing files now."""
    ranked = _losers(leaves, kept)
    longest = sorted((len(f"{_shown(d)} ({n})".encode()) + 2 for d, n in ranked), reverse=True)
    size = sum(longest[:WHERE_DIRS]) + len(f"and {len(ranked)} more directories")
    left_out = sum(count for _, count in ranked)
    return Cap(CAP_REASON, limit, left_out, len(leaves), "x" * min(size, _WIDEST))


def _size(heads: Heads, leaves: list[Leaf], kept: set[int], lengths: list[int], limit: int) -> int:
    """The exact size of the digest keeping ``kept``, rendered."""
    contents = sum(lengths[n] for n in kept) + max(0, len(kept) - 1)
    return len(heads.head(kept, len(kept), where(leaves, kept, limit))) + contents


def _trim(
    heads: Heads, leaves: list[Leaf], ranked: list[Leaf], lengths: list[int], limit: int
) -> set[int]:
    """The most files of ``ranked`` (in order of need) whose digest fits; all do not."""
    low, high = 0, len(ranked) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if _size(heads, leaves, {leaf.n for leaf in ranked[:mid]}, lengths, limit) <= limit:
            low = mid
        else:
            high = mid - 1
    return {leaf.n for leaf in ranked[:low]}


def _shown(directory: str) -> str:
    """A directory as one line of text (in a summary line, a metadata value)."""
    return _CONTROL.sub("\ufffd", printable(directory + "/" if directory else "./"))
