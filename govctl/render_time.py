"""How a time reads wherever govctl shows one to a person: one rule, one function (:func:`when`).

The rule:

- In the operator's time zone (the system's, or ``TZ``), or in a zone given (a schedule's own).
- The date only when it is not today in that zone: ``17:29:17 GMT`` today,
  ``2026-12-05 17:29:17 GMT`` otherwise (as ``ls -l`` drops what the reader knows).
- The zone named after the time by its abbreviation for that moment (``GMT`` in winter,
  ``BST`` in summer, ``UTC``, ``CET``); where the abbreviation is ambiguous (``CST`` is
  Chicago's, Havana's and Shanghai's) or is only an offset (``+04``), by its IANA name
  (``America/Chicago``, ``Asia/Dubai``), else as ``UTC+04:00``.
- Seconds where they matter (log lines, executions), minutes where they do not (schedules,
  deployments): ``seconds=False``.

``--json`` carries ISO 8601 instead (``render.to_json``); nothing here is for machines. Pure
functions, no output: services that word a message with a time in it (doctor's evidence) use
them too. A test keeps other code from formatting times its own way.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

# Abbreviations the tz database gives to more than one offset in these years (a test checks
# the installed database against this list): CST is UTC-6 in Chicago, UTC-5 in Havana and
# UTC+8 in Shanghai; IST is Dublin's, Jerusalem's and Kolkata's; PST Los Angeles' and Manila's.
AMBIGUOUS = frozenset({"CDT", "CST", "IST", "PST"})
_WORD = re.compile(r"[A-Z]{2,6}")


def when(
    moment: datetime | None,
    *,
    zone: tzinfo | None = None,
    seconds: bool = True,
    clock_only: bool = False,
    now: datetime | None = None,
) -> str:
    """``moment`` as people read it (see the module's rule); ``-`` for none.

    ``clock_only``: the time of day alone, for lines under a heading that already said the
    day and the zone (a run's live view and its failed tasks' log lines).
    """
    if moment is None:
        return "-"
    at = moment.astimezone(zone)  # zone None: the operator's zone, with its rules at `moment`
    clock = f"{at:%H:%M:%S}" if seconds else f"{at:%H:%M}"
    if clock_only:
        return clock
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    shown = clock if at.date() == today else f"{at:%Y-%m-%d} {clock}"
    return f"{shown} {zone_label(at, zone)}"


def scheduled(moment: datetime | None, time_zone: str, *, now: datetime | None = None) -> str:
    """A schedule's time in the schedule's own zone (Cloud Scheduler's ``time_zone``), with the
    operator's beside it when their clock reads differently: ``02:00 UTC``,
    ``2026-12-01 02:00 EST (2026-12-01 07:00 GMT local)``."""
    if moment is None:
        return "-"
    zone = ZoneInfo(time_zone)
    there = when(moment, zone=zone, seconds=False, now=now)
    if same_wall_clock(moment, zone):
        return there
    return f"{there} ({when(moment, seconds=False, now=now)} local)"


def day(value: date) -> str:
    """A calendar day (no time, no zone): ``2026-11-30``."""
    return f"{value:%Y-%m-%d}"


def zone_label(at: datetime, zone: tzinfo | None = None) -> str:
    """The name of ``at``'s zone at that moment: its abbreviation, or the IANA name where the
    abbreviation is ambiguous or only an offset, or ``UTC±HH:MM``."""
    abbreviation = at.tzname() or ""
    if abbreviation == "UTC" or (_WORD.fullmatch(abbreviation) and abbreviation not in AMBIGUOUS):
        return abbreviation
    name = zone.key if isinstance(zone, ZoneInfo) else local_zone_name() if zone is None else None
    return name or _offset(at)


def same_wall_clock(at: datetime, zone: tzinfo) -> bool:
    """Whether ``at`` reads the same on ``zone``'s clock as on the operator's (same offset, as
    UTC and London's GMT: then one reading is enough)."""
    return at.astimezone().utcoffset() == at.astimezone(zone).utcoffset()


@cache
def local_zone_name() -> str | None:
    """The IANA name of the operator's zone (``TZ``, else the system's), if it has one."""
    import warnings

    try:
        import tzlocal

        with warnings.catch_warnings():  # its "defaulting to UTC" is not the operator's news
            warnings.simplefilter("ignore")
            name: str | None = tzlocal.get_localzone_name()
    except Exception:  # tzlocal raises its own kinds for odd systems: then there is no name
        return None
    return name if name and "/" in name else None


def _offset(at: datetime) -> str:
    offset = at.utcoffset()
    if offset is None:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"
