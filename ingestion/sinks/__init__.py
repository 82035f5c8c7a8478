"""Where digests go: a Cloud Storage bucket or a local directory, behind one interface."""

from __future__ import annotations

from pathlib import Path

from ingestion.sinks.base import (
    DIGEST_CONTENT_TYPE,
    REPORT_CONTENT_TYPE,
    Sink,
    SinkError,
    Stored,
    digest_key,
)
from ingestion.sinks.directory import DirSink
from ingestion.sinks.gcs import GcsSink


def open_sink(spec: str, *, storage_endpoint: str | None = None) -> Sink:
    """``gs://BUCKET[/PREFIX]`` → :class:`GcsSink` (on ``storage_endpoint`` when given: an
    emulator); anything else is a directory."""
    if spec.startswith("gs://"):
        bucket, _, prefix = spec[len("gs://") :].partition("/")
        if not bucket:
            raise SinkError(f"--sink {spec!r} names no bucket — use gs://BUCKET[/PREFIX]")
        return GcsSink(bucket, prefix, endpoint=storage_endpoint)
    if not spec:
        raise SinkError("--sink is empty — pass gs://BUCKET[/PREFIX] or a directory")
    return DirSink(Path(spec))


__all__ = [
    "DIGEST_CONTENT_TYPE",
    "REPORT_CONTENT_TYPE",
    "DirSink",
    "GcsSink",
    "Sink",
    "SinkError",
    "Stored",
    "digest_key",
    "open_sink",
]
