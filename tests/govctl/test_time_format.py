"""One time format across commands (govctl.render_time): local, the zone named, the date when
not today; a schedule's own zone with the operator's beside it; nobody else formats times."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
import tzlocal

from govctl import render_time
from govctl.render_time import scheduled, when

ROOT = Path(__file__).resolve().parents[2]
WINTER = datetime(2026, 12, 6, 17, 29, 17, tzinfo=UTC)
SUMMER = datetime(2026, 7, 6, 16, 29, 17, tzinfo=UTC)


Zone = Callable[[str], None]


def _forget_zone() -> None:
    time.tzset()
    render_time.local_zone_name.cache_clear()
    tzlocal.reload_localzone()  # tzlocal keeps the name it found


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Zone]:
    """``zone("Europe/London")`` makes it the operator's zone (TZ) for the test."""

    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        _forget_zone()

    yield use
    monkeypatch.undo()
    _forget_zone()


def test_london_in_winter_and_summer(zone: Zone) -> None:
    zone("Europe/London")
    assert when(WINTER, now=WINTER) == "17:29:17 GMT"
    assert when(SUMMER, now=SUMMER) == "17:29:17 BST"  # 16:29 UTC: an hour ahead in summer
    assert when(WINTER, now=WINTER + timedelta(days=1)) == "2026-12-06 17:29:17 GMT"
    assert when(WINTER, now=WINTER, seconds=False) == "17:29 GMT"
    assert when(WINTER, now=WINTER, clock_only=True) == "17:29:17"
    assert when(None) == "-"


def test_utc_and_zones_without_a_clear_abbreviation(zone: Zone) -> None:
    zone("UTC")
    assert when(WINTER, now=WINTER) == "17:29:17 UTC"
    zone("America/Chicago")  # CST is also Havana's and Shanghai's: the IANA name says which
    assert when(WINTER, now=WINTER) == "11:29:17 America/Chicago"
    zone("Asia/Dubai")  # the tz database has only "+04" for it
    assert when(WINTER, now=WINTER) == "21:29:17 Asia/Dubai"
    zone("Europe/Paris")
    assert when(WINTER, now=WINTER) == "18:29:17 CET"
    # "Today" is the operator's: 00:30 in Auckland, half an hour after 23:00 there, is
    # tomorrow, though both are 6 December in UTC.
    zone("Pacific/Auckland")
    late = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)  # 23:00 NZDT
    assert when(late + timedelta(minutes=90), now=late) == "2026-12-07 00:30:00 NZDT"
    assert when(late, now=late) == "23:00:00 NZDT"


def test_a_schedules_time_is_in_its_zone_with_the_operators_beside_it(zone: Zone) -> None:
    fire = datetime(2026, 12, 7, 2, tzinfo=UTC)
    zone("Europe/London")  # GMT in December: the same clock as UTC, said once
    assert scheduled(fire, "Etc/UTC", now=WINTER) == "2026-12-07 02:00 UTC"
    summer = datetime(2027, 7, 1, 2, tzinfo=UTC)
    assert (scheduled(summer, "Etc/UTC", now=WINTER)
            == "2027-07-01 02:00 UTC (2027-07-01 03:00 BST local)")  # fmt: skip
    zone("UTC")
    new_york = datetime(2026, 12, 7, 7, tzinfo=UTC)
    assert (scheduled(new_york, "America/New_York", now=WINTER)
            == "2026-12-07 02:00 EST (2026-12-07 07:00 UTC local)")  # fmt: skip
    assert scheduled(None, "Etc/UTC") == "-"


def test_the_ambiguous_abbreviations_are_those_of_the_tz_database() -> None:
    """Every abbreviation the installed tz database gives to two offsets in the next two years
    is named by its zone instead."""
    offsets: dict[str, set[timedelta | None]] = {}
    start = datetime.now(UTC)
    for name in available_timezones():
        z = ZoneInfo(name)
        for week in range(0, 105, 2):
            at = (start + timedelta(weeks=week)).astimezone(z)
            offsets.setdefault(at.tzname() or "", set()).add(at.utcoffset())
    ambiguous = {a for a, found in offsets.items() if len(found) > 1 and a.isalpha()}
    assert ambiguous <= render_time.AMBIGUOUS


# Times formatted for machines, or for a wall clock that has no zone: the only strftime,
# isoformat and %-formats outside govctl/render_time.py.
ALLOWED = {
    ("govctl/render.py", "return value.isoformat()"),  # --json
    ("govctl/services/schedule.py", '"time": f.at.isoformat()'),  # --json
    ("govctl/services/schedule.py", '"local_time": f.at.astimezone(local_zone).isoformat()'),
    ("govctl/services/schedule.py", '"time": s.last_attempt_time.isoformat()'),  # --json
    ("govctl/services/logs.py", 'isoformat(timespec="microseconds")'),  # a Logging filter
    ("govctl/cli/cost.py", '"day": d.day.isoformat()'),  # --json
    # The name of an index manifest object, and the watermark stored in the summary (RFC 3339).
    ("govctl/services/index_sync.py", 'datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")'),
    ("govctl/services/index_sync.py", 'isoformat(timespec="microseconds")'),
    # A DST gap's wall-clock time does not exist in the zone, so no zone can name it.
    ("govctl/services/schedule.py", 'f"{first.at:%Y-%m-%d %H:%M} in {zone} is'),
}
FORMATTING = re.compile(r"\.strftime\(|\.isoformat\(|:%[A-Za-z]|\bctime\(")


def test_no_other_code_formats_a_time_for_people() -> None:
    """The renderers and the services that word messages use render_time, not their own."""
    files = [*ROOT.glob("govctl/render*.py"), *ROOT.glob("govctl/cli/*.py"),
             *ROOT.glob("govctl/services/**/*.py")]  # fmt: skip
    stray = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel == "govctl/render_time.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORMATTING.search(line) and not any(
                rel == f and snippet in line for f, snippet in ALLOWED
            ):
                stray.append(f"{rel}:{number}: {line.strip()}")
    assert stray == [], "format times with govctl.render_time.when:\n" + "\n".join(stray)
