"""A subset of the Cloud Logging query language, parsed once and evaluated per entry.

Grammar (what the real language documents, minus what is marked unsupported)::

    query      = [conj]
    conj       = disj { ["AND"] disj }          -- juxtaposition is AND
    disj       = unary { "OR" unary }           -- OR binds tighter than AND, as in Logging
    unary      = ("NOT" | "-") unary | primary
    primary    = "(" conj ")" | comparison | function | global
    comparison = path op value
    path       = segment { "." segment }        -- a segment is a word or a "quoted string"
    op         = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":" | "=~" | "!~"
    value      = literal | "(" vconj ")"        -- e.g. resource.type = ("a" OR "b")
    function   = "log_id" "(" string ")"
    global     = literal                        -- matched with ":" against every field

Everything the emulator cannot evaluate raises :class:`FilterError` naming the construct,
which the service turns into INVALID_ARGUMENT: a filter is never partly ignored.

Filters are evaluated against raw ``LogEntry`` protobufs: each comparison reads its one
field (timestamps as integer nanoseconds, severity as its number), so a scan of many entries
builds no intermediate objects.

This module is the public face; :mod:`.filter_parse` holds the lexer and parser,
:mod:`.filter_eval` the predicates they build.
"""

from __future__ import annotations

from dataclasses import dataclass

from govctl.emulator.logging.filter_eval import (
    SEVERITIES,
    Entry,
    FilterError,
    Predicate,
    parse_severity,
    parse_timestamp,
)
from govctl.emulator.logging.filter_parse import MAX_DEPTH, Parser

__all__ = [
    "MAX_DEPTH",
    "SEVERITIES",
    "FilterError",
    "LogFilter",
    "parse_severity",
    "parse_timestamp",
]

MAX_FILTER_LENGTH = 20_000


@dataclass(frozen=True)
class LogFilter:
    """A compiled filter: ``LogFilter.parse(text).matches(log_entry_pb)``."""

    text: str
    _predicate: Predicate

    @classmethod
    def parse(cls, text: str) -> LogFilter:
        if len(text) > MAX_FILTER_LENGTH:
            raise FilterError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
        return cls(text, Parser(text).parse())

    def matches(self, entry: Entry) -> bool:
        return self._predicate(entry)
