"""Sinks for digests and run reports (the implementations live in :mod:`ingestion.sinks`)."""

from ingestion.sinks import (
    DIGEST_CONTENT_TYPE,
    REPORT_CONTENT_TYPE,
    DirSink,
    GcsSink,
    Sink,
    SinkError,
    digest_key,
    open_sink,
)

__all__ = [
    "DIGEST_CONTENT_TYPE",
    "REPORT_CONTENT_TYPE",
    "DirSink",
    "GcsSink",
    "Sink",
    "SinkError",
    "digest_key",
    "open_sink",
]
