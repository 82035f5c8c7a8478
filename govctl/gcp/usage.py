"""What the job has used: the bucket's size, and its executions' task run times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from govctl import threads
from govctl.gcp import clients, executions
from govctl.gcp.errors import translate


def bucket_bytes(project: str, bucket: str, timeout_s: float = 20.0) -> int:
    """The sum of the bucket's object sizes (live objects; one listing, retried ``timeout_s``)."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    with translate(f"list gs://{bucket}", not_found="create it with `govctl setup`"):
        client = clients.storage_client(project)
        blobs = client.list_blobs(
            bucket,
            fields="items(name,size),nextPageToken",
            timeout=timeout_s,
            retry=DEFAULT_RETRY.with_timeout(timeout_s),
        )
        return sum(blob.size or 0 for blob in blobs)


@dataclass(frozen=True)
class PrefixUsage:
    """The objects under a prefix of a bucket: how many, their bytes, and the bytes of those
    created since a time."""

    count: int
    bytes: int
    bytes_since: int


def prefix_usage(project: str, bucket: str, prefix: str, since: datetime) -> PrefixUsage:
    """One listing of ``prefix`` only (the job's ``_runs/`` or ``_state/``: a few objects a
    run, never the digests)."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    count = size = recent = 0
    with translate(f"list gs://{bucket}/{prefix}", not_found="create it with `govctl setup`"):
        blobs = clients.storage_client(project).list_blobs(
            bucket, prefix=prefix, fields="items(name,size,timeCreated),nextPageToken",
            timeout=20.0, retry=DEFAULT_RETRY.with_timeout(20.0),
        )  # fmt: skip
        for blob in blobs:
            count += 1
            size += blob.size or 0
            if blob.time_created is not None and blob.time_created >= since:
                recent += blob.size or 0
    return PrefixUsage(count, size, recent)


def registry_bytes(project: str, location: str, repository: str) -> int | None:
    """The Artifact Registry repository's size; None when it does not exist.

    Google reports a repository's ``size_bytes``; where that is 0 (the emulator) the images'
    sizes are summed, an upper bound as layers shared between images count once per image.
    """
    from google.api_core import exceptions as gexc

    client = clients.artifact_registry()
    name = f"projects/{project}/locations/{location}/repositories/{repository}"
    with translate(f"read Artifact Registry repository {repository}"):
        try:
            size = client.get_repository(name=name).size_bytes
        except gexc.NotFound:
            return None
        if size:
            return int(size)
        return sum(int(i.image_size_bytes) for i in client.list_docker_images(parent=name))


@dataclass(frozen=True)
class Usage:
    """One finished execution and the run time of each of its tasks that ran."""

    execution: executions.Execution
    task_seconds: tuple[float, ...]

    @property
    def started(self) -> datetime | None:
        return self.execution.started or self.execution.created


def finished(
    job_path: str,
    limit: int,
    since: datetime | None = None,
    *,
    succeeded: int | None = None,
) -> list[Usage]:
    """The job's finished executions (newest first, started after ``since``) with task times.

    ``succeeded=N`` keeps only the newest N successful ones. Tasks are read concurrently: one
    ListTasks call per execution kept.
    """
    found = [
        e
        for e in executions.list_for_job(job_path, limit)
        if e.done and (since is None or ((e.started or e.created) or since) >= since)
        if succeeded is None or e.status == "succeeded"
    ][:succeeded]
    if not found:
        return []

    def times(ex: executions.Execution) -> tuple[float, ...]:
        return tuple(
            d for t in executions.tasks(ex.full) if (d := t.duration_s()) is not None and d >= 0
        )

    with threads.pool(min(8, len(found)), "usage") as pool:
        durations = threads.map_all(pool, times, found)
    return [Usage(e, t) for e, t in zip(found, durations, strict=True)]


@dataclass(frozen=True)
class DigestStats:
    """The digests in the bucket (``owner/name.md``; the job's own ``_…`` objects left out)."""

    bucket: str
    location: str | None
    digests: int
    bytes: int
    oldest: datetime | None  # processedAt metadata
    newest: datetime | None


def _processed_at(metadata: dict[str, str] | None) -> datetime | None:
    try:
        return datetime.fromisoformat((metadata or {})["processedAt"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def digest_stats(project: str, bucket: str) -> DigestStats | None:
    """One listing of the bucket; None when the bucket does not exist."""
    from google.api_core import exceptions as gexc

    with translate(f"list gs://{bucket}"):
        client = clients.storage_client(project)
        try:
            location = client.get_bucket(bucket).location
        except gexc.NotFound:
            return None
        count = size = 0
        times: list[datetime] = []
        for blob in client.list_blobs(bucket, fields="items(name,size,metadata),nextPageToken"):
            if blob.name.startswith("_") or not blob.name.endswith(".md"):
                continue
            count += 1
            size += blob.size or 0
            at = _processed_at(blob.metadata)
            if at is not None:
                times.append(at)
    return DigestStats(bucket, location, count, size, min(times, default=None),
                       max(times, default=None))  # fmt: skip


# Where the job remembers repositories that keep failing (ingestion/failures.py).
FAILURES_OBJECT = "_state/failures.json"


def persistent_failures(project: str, bucket: str) -> list[dict[str, str]]:
    """The repositories that failed in their last attempt: repo, reason, first/last failure,
    failures, retry_after; the longest-failing first."""
    import json

    from google.api_core import exceptions as gexc

    with translate(f"read gs://{bucket}/{FAILURES_OBJECT}"):
        blob = clients.storage_client(project).bucket(bucket).blob(FAILURES_OBJECT)
        try:
            data = json.loads(blob.download_as_bytes())
        except gexc.NotFound:
            return []
        except ValueError:
            return []  # half-written or foreign: the job itself reports that
    if not isinstance(data, dict):
        return []
    found = [{"repo": str(repo), **{k: str(v) for k, v in record.items()}}
             for repo, record in data.items() if isinstance(record, dict)]  # fmt: skip
    return sorted(found, key=lambda r: r.get("first_failed", ""))
