"""Times as the job writes them: RFC 3339 in UTC with a ``Z`` suffix and microseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """The current time as RFC 3339 in UTC with a ``Z`` suffix."""
    return rfc3339(now_utc())


def parse_time(text: str) -> datetime:
    """The inverse of :func:`rfc3339` (any ISO 8601 time with an offset or ``Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
