"""The plan of `govctl index sync`: ids, parts and what a sync imports and removes."""

from __future__ import annotations

import re

import pytest

from govctl.services import index_plan as ip
from govctl.services.index_plan import Digest, Indexed

# Document.id: RFC-1034 labels, at most 128 characters (document.proto); ours stay within 63.
_RFC1034 = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _digest(key: str, size: int = 100, generation: int = 1, meta: int = 1) -> Digest:
    return Digest(key, size, generation, meta, {"url": f"https://github.com/{key}"})


def test_ids_are_stable_per_repository_and_keep_the_documented_pattern() -> None:
    base = ip.document_id("alphagov/frontend")
    assert base == ip.document_id("alphagov/frontend")
    assert base != ip.document_id("alphagov/Frontend") != ip.document_id("alphagov/whitehall")
    assert ip.document_ids("alphagov/frontend", 3) == [base, f"{base}-2", f"{base}-3"]
    for doc_id in ip.document_ids("x/y.z_w-1", 5):
        assert _RFC1034.fullmatch(doc_id) and len(doc_id) <= 63, doc_id


@pytest.mark.parametrize(
    ("size", "parts"),
    [(0, 1), (2_500_000, 1), (2_500_001, 2), (5_000_000, 3), (8 * 1024 * 1024, 5)],
)
def test_part_count_depends_on_size_only(size: int, parts: int) -> None:
    assert ip.part_count(size) == parts


def test_split_ends_parts_at_lines_and_keeps_every_byte() -> None:
    line = ("é" * 40 + "\n").encode()  # two-byte characters: a cut must not split one
    data = line * (8 * 1024 * 1024 // len(line))
    parts = ip.split(data, ip.part_count(len(data)))
    assert b"".join(parts) == data
    assert len(parts) == 5
    for k, piece in enumerate(parts, 1):
        header = ip.part_header("alphagov/big", k, len(parts)) if k > 1 else b""
        assert len(header + piece) <= ip.TEXT_LIMIT
        assert piece.endswith(b"\n")
        piece.decode("utf-8")


def test_split_of_one_long_line_cuts_at_a_character() -> None:
    data = "é".encode() * 2_600_000  # 5.2 MB, no newline
    parts = ip.split(data, ip.part_count(len(data)))
    assert b"".join(parts) == data
    assert all(len(p) <= ip.PART_TARGET + ip.PART_SLACK for p in parts)
    for piece in parts:
        piece.decode("utf-8")


def test_manifest_line_declares_plain_text_and_metadata() -> None:
    small = _digest("alphagov/frontend")
    line = ip.manifest_line("b", small, 1)
    assert line["id"] == ip.document_id("alphagov/frontend")
    assert line["content"] == {"mimeType": "text/plain", "uri": "gs://b/alphagov/frontend.md"}
    assert line["structData"]["owner"] == "alphagov"
    assert line["structData"]["repository"] == "alphagov/frontend"
    assert line["structData"]["url"] == "https://github.com/alphagov/frontend"
    big = _digest("alphagov/big", size=5_000_000)
    second = ip.manifest_line("b", big, 2)
    assert second["id"].endswith("-2")
    assert second["content"]["uri"] == "gs://b/_index/parts/alphagov/big/2.txt"
    assert second["structData"]["parts"] == 3


def test_plan_imports_what_changed_and_removes_what_left() -> None:
    record = {
        "a/same": Indexed(1, 1, 1),
        "a/rewritten": Indexed(1, 1, 1),
        "a/metadata": Indexed(1, 1, 1),
        "a/shrunk": Indexed(1, 1, 3),
        "a/left": Indexed(1, 1, 2),
        "a/gone": Indexed(1, 1, 1),
    }
    digests = {
        d.key: d
        for d in [
            _digest("a/same"),
            _digest("a/rewritten", generation=2),
            _digest("a/metadata", meta=2),
            _digest("a/shrunk", generation=2),
            _digest("a/left"),  # its digest stays, the feed no longer has it
            _digest("a/new"),
        ]
    }
    feed = {"a/same", "a/rewritten", "a/metadata", "a/shrunk", "a/new", "a/gone"}

    p = ip.plan(record, digests, feed)

    assert [d.key for d in p.imports] == ["a/metadata", "a/new", "a/rewritten", "a/shrunk"]
    assert p.removed == ("a/gone", "a/left")
    assert set(p.purge_ids) == {
        *ip.document_ids("a/gone", 1),
        *ip.document_ids("a/left", 2),
        ip.document_id("a/shrunk", 2),
        ip.document_id("a/shrunk", 3),
    }
    assert set(p.drop_parts) == {
        "_index/parts/a/left/1.txt",
        "_index/parts/a/left/2.txt",
        *(f"_index/parts/a/shrunk/{k}.txt" for k in (1, 2, 3)),
    }
    assert set(p.record) == {"a/same", "a/rewritten", "a/metadata", "a/shrunk", "a/new"}
    assert p.record["a/shrunk"] == Indexed(2, 1, 1)
    assert p.documents == 5 and p.import_documents == 4


def test_plan_with_nothing_changed_is_empty_and_without_a_feed_removes_nothing() -> None:
    record = {"a/x": Indexed(1, 1, 1), "a/y": Indexed(1, 1, 1)}
    digests = {k: _digest(k) for k in record}
    assert ip.plan(record, digests, set(record)).empty
    assert ip.plan(record, digests, None).empty
    everything = ip.plan(record, digests, None, everything=True)
    assert len(everything.imports) == 2 and not everything.purge_ids


def test_record_round_trip_and_unexpected_documents() -> None:
    record = {"a/x": Indexed(5, 2, 1), "a/big": Indexed(7, 1, 3)}
    assert ip.record_from_json(ip.record_to_json(record)) == record
    assert ip.record_from_json({"schema": 2}) is None
    assert ip.record_from_json({"schema": 1, "repositories": {"a/x": [1, "2", 3]}}) is None
    stale = "0123456789abcdef0123456789abcdef"  # an id of the old `content` import
    ids = [*ip.document_ids("a/x", 1), *ip.document_ids("a/big", 3), stale]
    assert ip.unexpected(ids, record) == [stale]


def test_departures_need_only_the_record_and_the_feed() -> None:
    record = {"a/stay": Indexed(1, 1, 1), "a/left": Indexed(1, 1, 2)}
    p = ip.departures(record, {"a/stay", "a/new"})
    assert p.removed == ("a/left",) and not p.imports
    assert set(p.purge_ids) == set(ip.document_ids("a/left", 2))
    assert set(p.drop_parts) == {"_index/parts/a/left/1.txt", "_index/parts/a/left/2.txt"}
    assert p.record == {"a/stay": Indexed(1, 1, 1)}
    assert ip.departures(record, set(record)).empty


def test_a_run_writing_around_the_last_sync_makes_the_summary_untrusted() -> None:
    from datetime import UTC, datetime, timedelta

    from govctl.gcp.summary import LastRun
    from govctl.services.index_sync import OVERLAP, _overlapped

    mark = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

    def run(start: int, end: int, outcome: str = "succeeded") -> LastRun:
        at = lambda minutes: mark + timedelta(minutes=minutes)  # noqa: E731
        return LastRun("e", 1, 1, at(start), at(end), outcome, {})

    assert not _overlapped(run(-60, -30), mark)  # ended long before the sync listed
    assert not _overlapped(run(30, 60), mark)  # started long after
    assert _overlapped(run(-10, 10), mark)  # writing while it listed
    assert _overlapped(run(-10, 0), mark + OVERLAP / 2)  # within the clock margin
    assert _overlapped(run(-60, -30, "incomplete"), mark)  # tasks not all reported
    assert not _overlapped(None, mark) and not _overlapped(run(-10, 10), None)
