"""What `govctl index sync` sends to Vertex AI Search: documents, parts and the plan of a sync.

Pure decisions, no I/O (``services.index`` reads and writes; ``gcp.index`` talks to Google).

**Documents.** Each digest ``{owner}/{name}.md`` becomes one document, or several parts when it
is larger than a text document linked by URI may be (``Document.Content.uri``: "The maximum
file size is 2.5 MB for text-based formats", googleapis
``google/cloud/discoveryengine/v1/document.proto``). A document's id is ``repo-`` and the first
128 bits of SHA-256 of ``owner/name`` in hex (RFC-1034 letters, digits and ``-``: the
``Document.id`` rule), so a repository keeps its id across syncs; part ``k`` > 1 adds ``-k``.
Its line in the JSONL manifest (``data_schema`` ``document``) declares ``content.mimeType``
``text/plain`` — Markdown is not a type the service imports — and ``content.uri`` the digest
(or, for a part, the part's own object under ``_index/parts/``), with ``structData`` that
search can filter on: owner, name, repository, url, pushed_at, processed_at, part, parts.

**Parts.** A digest over 2,500,000 bytes is cut into ``ceil(size / 2,000,000)`` parts at line
ends (at a character boundary when a line is longer than the slack), each at most 2,400,000
bytes, so each stays under the 2.5 MB limit with room for the one header line a part after the
first starts with (``Repository: owner/name (part k of n)``). The count depends only on the
size, so the documents a digest should have are known from a listing.

**The record** (``_index/record.json.gz``): for each repository indexed, the digest's
generation and metageneration as imported and its part count. A sync compares the bucket's
digests with it: new or rewritten digests (their content or metadata changed) are imported;
repositories no longer in the feed, or whose digest is gone, and parts a digest no longer has
are purged.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

# Document.Content.uri: at most 2.5 MB for a text-based format (read as 10^6 bytes).
TEXT_LIMIT = 2_500_000
PART_TARGET = 2_000_000
PART_SLACK = 400_000  # how far before the even cut a part may end, to end at a line
MIME_TYPE = "text/plain"
INDEX_PREFIX = "_index"
RECORD_PATH = f"{INDEX_PREFIX}/record.json.gz"
IMPORTS_PREFIX = f"{INDEX_PREFIX}/imports/"
PARTS_PREFIX = f"{INDEX_PREFIX}/parts/"
RECORD_SCHEMA = 1


def document_id(key: str, part: int = 1) -> str:
    """The id of ``owner/name``'s document (``part`` > 1: its part)."""
    base = "repo-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return base if part == 1 else f"{base}-{part}"


def document_ids(key: str, parts: int) -> list[str]:
    return [document_id(key, k) for k in range(1, parts + 1)]


def part_count(size: int) -> int:
    """How many documents a digest of ``size`` bytes becomes."""
    return 1 if size <= TEXT_LIMIT else math.ceil(size / PART_TARGET)


def part_path(key: str, part: int) -> str:
    """The object holding part ``part`` of a split digest."""
    return f"{PARTS_PREFIX}{key}/{part}.txt"


def part_header(key: str, part: int, parts: int) -> bytes:
    return f"Repository: {key} (part {part} of {parts})\n\n".encode()


def split(data: bytes, parts: int) -> list[bytes]:
    """``data`` in ``parts`` pieces, each ending at a line end within PART_SLACK before its
    even share (else at a UTF-8 character boundary), parts after the first with their header
    added by the caller."""
    bounds = [0]
    for k in range(1, parts):
        target = k * len(data) // parts
        floor = max(bounds[-1] + 1, target - PART_SLACK)
        cut = data.rfind(b"\n", floor, target) + 1
        if cut <= 0:
            cut = target
            while cut > floor and data[cut] & 0xC0 == 0x80:  # inside a UTF-8 sequence
                cut -= 1
        bounds.append(cut)
    bounds.append(len(data))
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class Digest:
    """A digest in the bucket, as a listing shows it."""

    key: str  # owner/name
    size: int
    generation: int
    metageneration: int
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def parts(self) -> int:
        return part_count(self.size)


@dataclass(frozen=True)
class Indexed:
    """A repository as the last sync indexed it."""

    generation: int
    metageneration: int
    parts: int

    def as_list(self) -> list[int]:
        return [self.generation, self.metageneration, self.parts]


def record_from_json(data: Any) -> dict[str, Indexed] | None:
    """The record's repositories; None for a foreign or broken value (then a full sync)."""
    if not isinstance(data, dict) or data.get("schema") != RECORD_SCHEMA:
        return None
    repos = data.get("repositories")
    if not isinstance(repos, dict):
        return None
    out: dict[str, Indexed] = {}
    for key, value in repos.items():
        if not (
            isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value)
        ):
            return None
        out[str(key)] = Indexed(*value)
    return out


def record_to_json(record: Mapping[str, Indexed]) -> dict[str, Any]:
    repos = {key: record[key].as_list() for key in sorted(record)}
    return {"schema": RECORD_SCHEMA, "repositories": repos}


def manifest_line(bucket: str, digest: Digest, part: int) -> dict[str, Any]:
    """The JSONL manifest's Document for one part of a digest (proto3 JSON names)."""
    owner, _, name = digest.key.partition("/")
    parts = digest.parts
    uri = (
        f"gs://{bucket}/{digest.key}.md"
        if parts == 1
        else f"gs://{bucket}/{part_path(digest.key, part)}"
    )
    title = digest.key if parts == 1 else f"{digest.key} (part {part} of {parts})"
    meta = digest.metadata
    struct = {
        "title": title,
        "owner": owner,
        "name": name,
        "repository": digest.key,
        "url": meta.get("url") or f"https://github.com/{digest.key}",
        "pushed_at": meta.get("pushedAt", ""),
        "processed_at": meta.get("processedAt", ""),
        "digest": f"gs://{bucket}/{digest.key}.md",
        "part": part,
        "parts": parts,
    }
    return {
        "id": document_id(digest.key, part),
        "structData": struct,
        "content": {"mimeType": MIME_TYPE, "uri": uri},
    }


@dataclass(frozen=True)
class SyncPlan:
    """What one sync does. ``record`` is what the index holds once it all succeeded."""

    imports: tuple[Digest, ...]  # new or changed digests, every part of each
    purge_ids: tuple[str, ...]  # documents to delete
    removed: tuple[str, ...]  # repositories that leave the index
    drop_parts: tuple[str, ...]  # part objects no digest needs any more
    record: dict[str, Indexed]

    @property
    def documents(self) -> int:
        return sum(i.parts for i in self.record.values())

    @property
    def import_documents(self) -> int:
        return sum(d.parts for d in self.imports)

    @property
    def empty(self) -> bool:
        return not self.imports and not self.purge_ids and not self.drop_parts


def plan(
    record: Mapping[str, Indexed],
    digests: Mapping[str, Digest],
    feed: Collection[str] | None,
    *,
    everything: bool = False,
) -> SyncPlan:
    """Compare the record with the bucket's digests (``feed``: the keys of the feed's
    repositories; None when unknown, then no digest counts as having left it).
    ``everything``: import every digest again, whatever the record says."""
    live = {k: d for k, d in digests.items() if feed is None or k in feed}
    imports = [d for k, d in sorted(live.items()) if everything or _changed(record.get(k), d)]
    removed = sorted(k for k in record if k not in live)
    purge: list[str] = []
    drop: list[str] = []
    for key in removed:
        purge += document_ids(key, record[key].parts)
        drop += _part_paths(key, 1, record[key].parts)
    for digest in imports:
        old = record.get(digest.key)
        if old is not None and old.parts > digest.parts:
            purge += [document_id(digest.key, k) for k in range(digest.parts + 1, old.parts + 1)]
            first = 1 if digest.parts == 1 else digest.parts + 1
            drop += _part_paths(digest.key, first, old.parts)
    new = {k: v for k, v in record.items() if k in live}
    for digest in imports:
        new[digest.key] = Indexed(digest.generation, digest.metageneration, digest.parts)
    return SyncPlan(
        imports=tuple(imports),
        purge_ids=tuple(purge),
        removed=tuple(removed),
        drop_parts=tuple(drop),
        record=new,
    )


def _changed(old: Indexed | None, digest: Digest) -> bool:
    return old is None or (old.generation, old.metageneration) != (
        digest.generation,
        digest.metageneration,
    )


def _part_paths(key: str, first: int, parts: int) -> list[str]:
    """The part objects ``first``..``parts`` of a digest split into ``parts`` (none when it
    was one document)."""
    return [part_path(key, k) for k in range(first, parts + 1)] if parts > 1 else []


def unexpected(ids: Collection[str], record: Mapping[str, Indexed]) -> list[str]:
    """Documents in the data store that no repository of ``record`` accounts for (left by an
    older import, another tool, or a record that was lost)."""
    expected = {i for key, entry in record.items() for i in document_ids(key, entry.parts)}
    return sorted(set(ids) - expected)


def departures(record: Mapping[str, Indexed], feed: Collection[str]) -> SyncPlan:
    """The plan when no digest changed but the feed did: the repositories that left it leave
    the index (known from the record alone, without listing the bucket)."""
    removed = sorted(k for k in record if k not in feed)
    purge = [i for key in removed for i in document_ids(key, record[key].parts)]
    drop = [p for key in removed for p in _part_paths(key, 1, record[key].parts)]
    kept = {k: v for k, v in record.items() if k in feed}
    return SyncPlan((), tuple(purge), tuple(removed), tuple(drop), kept)
