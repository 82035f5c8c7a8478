"""Small JSON objects in a Cloud Storage bucket (the run reports the job's tasks write)."""

from __future__ import annotations

import json
from typing import Any

from govctl.gcp import clients
from govctl.gcp.errors import translate


def read_json_under(
    bucket: str, prefix: str, name: str = r"[^/]*\.json", project: str | None = None
) -> dict[str, Any]:
    """The JSON objects right under ``prefix`` whose name matches the regular expression
    ``name``, by full name; an unreadable one is left out."""
    import re

    pattern = re.compile(re.escape(prefix) + name)
    found: dict[str, Any] = {}
    with translate(
        f"read gs://{bucket}/{prefix}",
        not_found=f"the bucket {bucket} does not exist: create it (govctl setup)",
        denied=f"reading gs://{bucket} needs roles/storage.objectViewer on it",
    ):
        client = clients.storage_client(project)
        for blob in client.list_blobs(bucket, prefix=prefix):
            if not pattern.fullmatch(blob.name):
                continue  # e.g. the feed snapshot next to the reports: large, not wanted
            try:
                found[blob.name] = json.loads(blob.download_as_bytes())
            except ValueError:
                continue  # a half-written or foreign object: the totals say what they cover
    return found
