"""The bucket's side of the search index: digests as a listing shows them, the feed the job
last used, and the objects `govctl index sync` keeps under ``_index/`` (the record of what is
indexed, the JSONL manifests it imports, the parts of digests too large for one document).

The layout of the job's objects (``{owner}/{name}.md``, ``_runs/{execution}/feed-ref.json``,
``_runs/feeds/{sha256}.json.gz``) is documented in docs/ingestion.md; govctl may not import
``ingestion``, so this module follows that documentation.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from govctl.gcp import clients
from govctl.gcp.errors import translate

# Digest names: {owner}/{name}.md with GitHub's name characters; the job's own objects start
# with "_", which no owner can (docs/ingestion.md).
_DIGEST_RE = re.compile(r"([A-Za-z0-9._-]+)/([A-Za-z0-9._-]+)\.md")
RESERVED = "_"
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
GZIP_TYPE = "application/gzip"
_NOT_FOUND_FIX = "create it with `govctl setup`"


@dataclass(frozen=True)
class StoredDigest:
    """A digest object as a listing shows it."""

    key: str  # owner/name
    size: int
    generation: int
    metageneration: int
    metadata: Mapping[str, str] = field(default_factory=dict)


def _denied(bucket: str, write: bool = False) -> str:
    role = "roles/storage.objectUser" if write else "roles/storage.objectViewer"
    return f"{'writing' if write else 'reading'} gs://{bucket} needs {role} on it"


def list_digests(project: str, bucket: str) -> dict[str, StoredDigest]:
    """Every digest with its size, generation, metageneration and custom metadata: one
    listing (1,000 objects a page) of the two name ranges around the job's ``_`` objects."""
    found: dict[str, StoredDigest] = {}
    with translate(f"list gs://{bucket}", not_found=_NOT_FOUND_FIX, denied=_denied(bucket)):
        client = clients.storage_client(project)
        for bounds in ({"end_offset": RESERVED}, {"start_offset": chr(ord(RESERVED) + 1)}):
            blobs = client.list_blobs(
                bucket,
                fields="items(name,size,generation,metageneration,metadata),nextPageToken",
                page_size=1000,  # Cloud Storage's maximum (and default) page
                **bounds,
            )
            for blob in blobs:
                m = _DIGEST_RE.fullmatch(blob.name)
                if m is None:
                    continue
                key = f"{m.group(1)}/{m.group(2)}"
                found[key] = StoredDigest(
                    key=key,
                    size=int(blob.size or 0),
                    generation=int(blob.generation or 0),
                    metageneration=int(blob.metageneration or 0),
                    metadata=dict(blob.metadata or {}),
                )
    return found


def read_bytes(project: str, bucket: str, path: str, generation: int | None = None) -> bytes | None:
    """An object's bytes (of ``generation`` when given); None when it does not exist."""
    from google.api_core import exceptions as gexc

    with translate(f"read gs://{bucket}/{path}", denied=_denied(bucket)):
        blob = clients.storage_client(project).bucket(bucket).blob(path, generation=generation)
        try:
            return bytes(blob.download_as_bytes())
        except gexc.NotFound:
            return None


def read_json(project: str, bucket: str, path: str) -> Any:
    """A JSON object (gzip-compressed when its name ends in ``.gz``); None when absent or not
    JSON."""
    data = read_bytes(project, bucket, path)
    if data is None:
        return None
    try:
        return json.loads(gzip.decompress(data) if path.endswith(".gz") else data)
    except (OSError, EOFError, ValueError):
        return None


def write(project: str, bucket: str, path: str, data: bytes, content_type: str) -> None:
    with translate(f"write gs://{bucket}/{path}", denied=_denied(bucket, write=True)):
        blob = clients.storage_client(project).bucket(bucket).blob(path)
        blob.upload_from_string(data, content_type=content_type)


def write_json(project: str, bucket: str, path: str, value: Any) -> None:
    """``value`` as compact JSON, gzip-compressed when ``path`` ends in ``.gz``."""
    data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    if path.endswith(".gz"):
        write(project, bucket, path, gzip.compress(data, mtime=0), GZIP_TYPE)
    else:
        write(project, bucket, path, data, JSON_TYPE)


def write_lines(project: str, bucket: str, path: str, lines: Iterable[Mapping[str, Any]]) -> str:
    """A JSONL file, one object a line; returns its ``gs://`` URI."""
    body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    write(project, bucket, path, body.encode(), JSON_TYPE)
    return f"gs://{bucket}/{path}"


def delete(project: str, bucket: str, paths: Iterable[str]) -> int:
    """Delete the objects at ``paths`` (one request each: they are few, the parts of digests
    that left and the previous manifest); absent ones are fine. Returns how many were asked
    for."""
    from google.api_core import exceptions as gexc

    names = list(paths)
    with translate(f"delete objects in gs://{bucket}", denied=_denied(bucket, write=True)):
        target = clients.storage_client(project).bucket(bucket)
        for name in names:
            try:
                target.delete_blob(name)
            except gexc.NotFound:
                continue
    return len(names)


def feed_keys(project: str, bucket: str, execution: str) -> tuple[str, set[str]] | None:
    """(sha256, the ``owner/name`` of every feed entry) of the feed snapshot ``execution``
    sharded; None when its reference or the snapshot is gone (a lifecycle rule expires
    ``_runs/`` after some days)."""
    ref = read_json(project, bucket, f"_runs/{execution}/feed-ref.json")
    sha = ref.get("sha256") if isinstance(ref, dict) else None
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        return None
    entries = read_json(project, bucket, f"_runs/feeds/{sha}.json.gz")
    if not isinstance(entries, list):
        return None
    keys = {
        f"{e['owner']}/{e['name']}"
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("owner"), str)
        and isinstance(e.get("name"), str)
    }
    return sha, keys


def feed_sha(project: str, bucket: str, execution: str) -> str | None:
    """The SHA-256 of the feed snapshot ``execution`` sharded (one small read)."""
    ref = read_json(project, bucket, f"_runs/{execution}/feed-ref.json")
    sha = ref.get("sha256") if isinstance(ref, dict) else None
    return sha if isinstance(sha, str) else None
