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
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2

MAX_FILTER_LENGTH = 20_000

SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}
SEVERITY_NAMES = {number: name for name, number in SEVERITIES.items()}

# LogEntry fields a filter may name but the emulator does not evaluate.
_UNSUPPORTED_FIELDS = {
    "protoPayload",
    "httpRequest",
    "operation",
    "sourceLocation",
    "traceSampled",
    "split",
    "errorGroups",
    "apphub",
    "apphubDestination",
}
_SNAKE = {
    "logName": "log_name",
    "insertId": "insert_id",
    "textPayload": "text_payload",
    "trace": "trace",
    "spanId": "span_id",
    "timestamp": "timestamp",
    "receiveTimestamp": "receive_timestamp",
}
_STRING_FIELDS = {"logName", "insertId", "textPayload", "trace", "spanId"}
_TIME_FIELDS = {"timestamp", "receiveTimestamp"}

Entry = Any  # a raw google.logging.v2.LogEntry protobuf
Predicate = Callable[[Entry], bool]


class FilterError(ValueError):
    """The filter is malformed or uses something the emulator does not support."""


# --- entries ---------------------------------------------------------------------------------


def _value_to_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {k: _value_to_py(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_value_to_py(v) for v in value.list_value.values]
    if kind == "null_value" or kind is None:
        return None
    return getattr(value, kind)


# --- lexer -----------------------------------------------------------------------------------

_OPERATORS = ("<=", ">=", "!=", "=~", "!~", "=", "<", ">", ":")
_WORD_STOP = set(' \t\r\n()"=!<>:~')
_KEYWORDS = {"AND", "OR", "NOT"}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}


@dataclass
class _Tok:
    kind: str  # "text" | "op" | "(" | ")" | "not" | "and" | "or" | "func" | "end"
    pos: int
    value: str = ""
    # For "text": the dotted segments and whether each was quoted.
    segments: list[tuple[str, bool]] = field(default_factory=list)


def _read_string(text: str, i: int) -> tuple[str, int]:
    """A double-quoted string starting at ``text[i] == '"'``; returns (value, next index)."""
    out: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == '"':
            return "".join(out), j + 1
        if c == "\\" and j + 1 < len(text):
            n = text[j + 1]
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                j += 2
            elif n == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[j + 2 : j + 6]):
                out.append(chr(int(text[j + 2 : j + 6], 16)))
                j += 6
            else:
                # Unknown escapes are kept verbatim so regular expressions like "\d" work.
                out.append(c + n)
                j += 2
            continue
        out.append(c)
        j += 1
    raise FilterError(f"unterminated string starting at position {i}")


def _read_word(text: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(text) and text[j] not in _WORD_STOP:
        j += 1
    return text[i:j], j


def _tokens(text: str) -> Iterator[_Tok]:
    i = 0
    prev = ""
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            yield _Tok("end", i)
            return
        c = text[i]
        if c in "()":
            yield _Tok(c, i)
            prev, i = c, i + 1
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            yield _Tok("op", i, op)
            prev, i = "op", i + len(op)
            continue
        if c in "'~!":
            raise FilterError(f"unexpected character {c!r} at position {i}")
        if c == "-" and prev != "op":
            if text.startswith("--", i):
                raise FilterError(f"comments ('--') are not supported (position {i})")
            if i + 1 < len(text) and not text[i + 1].isspace():
                yield _Tok("not", i, "-")
                prev, i = "not", i + 1
                continue
        start = i
        segments: list[tuple[str, bool]] = []
        raw_parts: list[str] = []
        # A path or value: words and quoted strings joined by dots, with no spaces between.
        while True:
            if i < len(text) and text[i] == '"':
                value, j = _read_string(text, i)
                segments.append((value, True))
            else:
                word, j = _read_word(text, i)
                if not word:
                    raise FilterError(f"unexpected character {text[i]!r} at position {i}")
                # A word may contain dots: split it, keeping a trailing dot as "continues".
                parts = word.split(".")
                cont = word.endswith(".") and j < len(text) and text[j] == '"'
                if cont:
                    parts = parts[:-1]
                if segments and parts and parts[0] == "":
                    parts = parts[1:]
                segments.extend((p, False) for p in parts)
                if cont:
                    raw_parts.append(text[i:j])
                    i = j
                    continue
            raw_parts.append(text[i:j])
            i = j
            nxt = text[i + 1] if i + 1 < len(text) else " "
            if text[i : i + 1] == "." and (nxt == '"' or nxt not in _WORD_STOP | {"."}):
                i += 1  # a quoted segment followed by more path: "a b".c
                continue
            break
        raw = text[start:i]
        if len(segments) == 1 and not segments[0][1] and segments[0][0] in _KEYWORDS:
            yield _Tok(segments[0][0].lower(), start, segments[0][0])
            prev = segments[0][0].lower()
            continue
        if (
            len(segments) == 1
            and not segments[0][1]
            and segments[0][0].lower() in {"and", "or", "not"}
        ):
            raise FilterError(
                f"{segments[0][0]!r} at position {start}: boolean operators must be upper case "
                f"({segments[0][0].upper()}); the emulator does not treat them as search terms"
            )
        if i < len(text) and text[i] == "(" and len(segments) == 1 and not segments[0][1]:
            yield _Tok("func", start, segments[0][0])
            prev = "func"
            continue
        yield _Tok("text", start, raw, segments)
        prev = "text"


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Literal:
    text: str
    quoted: bool


ValueExpr = Any  # _Literal | tuple("and"|"or", list) | tuple("not", expr)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


def parse_timestamp(text: str) -> int:
    """RFC 3339 text as integer nanoseconds since the epoch."""
    m = _RFC3339.fullmatch(text.strip())
    if not m:
        raise FilterError(
            f"invalid timestamp {text!r}: expected RFC 3339, e.g. 2024-05-01T00:00:00Z"
        )
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        # datetime() rejects out-of-range fields (month 13), which timegm would accept.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        raise FilterError(f"invalid timestamp {text!r}") from None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    frac = int((m.group(7) or "").ljust(9, "0"))
    zone = m.group(8)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + frac


def parse_severity(text: str) -> int:
    upper = text.strip().upper()
    if upper in SEVERITIES:
        return SEVERITIES[upper]
    if re.fullmatch(r"\d+", upper):
        return int(upper)
    raise FilterError(
        f"invalid severity {text!r}: expected one of {', '.join(SEVERITIES)} or a number"
    )


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as err:
        raise FilterError(f"invalid regular expression {text!r}: {err}") from None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _has(value: Any, needle: str) -> bool:
    """The ':' operator: case-insensitive substring, through maps and lists."""
    if value is None:
        return False
    if isinstance(value, dict):
        return any(_has(v, needle) for v in value.values())
    if isinstance(value, list):
        return any(_has(v, needle) for v in value)
    return needle in _as_text(value).lower()


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _leaf(kind: str, name: str, op: str, lit: _Literal) -> Callable[[Any], bool]:
    """A test of one present field value against one literal."""
    text = lit.text
    if op == ":":
        needle = text.lower()
        if kind == "severity":
            return lambda v: needle in SEVERITY_NAMES.get(v, str(v)).lower()
        if kind == "time":
            raise FilterError(f"operator ':' is not supported on {name}; use =, <, <=, >, >=")
        return lambda v: _has(v, needle)
    if op in ("=~", "!~"):
        pattern = _regex(text)
        positive = op == "=~"
        if kind == "time":
            raise FilterError(f"operator {op!r} is not supported on {name}")
        if kind == "map":
            raise FilterError(f"operator {op!r} needs a field, not the map {name}")

        def search(v: Any) -> bool:
            if kind == "severity":
                v = SEVERITY_NAMES.get(v, str(v))
            if isinstance(v, list):
                return any(search(x) for x in v)
            if isinstance(v, dict) or v is None:
                return False
            return (pattern.search(_as_text(v)) is not None) == positive

        return search
    compare = _ORDER[op]
    if kind == "map":
        raise FilterError(f"operator {op!r} needs a field, not the map {name}; use ':'")
    if kind == "severity":
        number = parse_severity(text)
        return lambda v: compare(v, number)
    if kind == "time":
        ns = parse_timestamp(text)
        return lambda v: compare(v, ns)
    if kind == "string":
        return lambda v: compare(v, text)
    # jsonPayload: the stored value decides how the literal is read.
    as_number = _number(text)
    as_bool = {"true": True, "false": False}.get(text.lower()) if not lit.quoted else None
    is_null = text == "NULL_VALUE" and not lit.quoted

    def dynamic(v: Any) -> bool:
        if isinstance(v, list):
            return any(dynamic(x) for x in v)
        if v is None:
            return is_null if op == "=" else (not is_null if op == "!=" else False)
        if isinstance(v, bool):
            if as_bool is None or op not in ("=", "!="):
                return False
            return compare(v, as_bool)
        if isinstance(v, float):
            return as_number is not None and compare(v, as_number)
        if isinstance(v, str):
            return compare(v, text)
        return False

    return dynamic


def _value_predicate(kind: str, name: str, op: str, expr: ValueExpr) -> Callable[[Any], bool]:
    if isinstance(expr, _Literal):
        return _leaf(kind, name, op, expr)
    tag = expr[0]
    if tag == "not":
        inner = _value_predicate(kind, name, op, expr[1])
        return lambda v: not inner(v)
    parts = [_value_predicate(kind, name, op, e) for e in expr[1]]
    if tag == "and":
        return lambda v: all(p(v) for p in parts)
    return lambda v: any(p(v) for p in parts)


# --- fields ----------------------------------------------------------------------------------

_MISSING = object()


def _json_getter(keys: list[str]) -> Callable[[Entry], Any]:
    def get(entry: Entry) -> Any:
        if entry.WhichOneof("payload") != "json_payload":
            return _MISSING
        fields = entry.json_payload.fields
        if not keys:
            return {k: _value_to_py(v) for k, v in fields.items()} or _MISSING
        value: Any = None
        for i, key in enumerate(keys):
            if i:
                if value.WhichOneof("kind") != "struct_value":
                    return _MISSING
                fields = value.struct_value.fields
            value = fields.get(key)
            if value is None:
                return _MISSING
        return _value_to_py(value)

    return get


def _time_getter(attr: str) -> Callable[[Entry], Any]:
    def get(entry: Entry) -> Any:
        if not entry.HasField(attr):
            return _MISSING
        ts = getattr(entry, attr)
        return ts.seconds * 1_000_000_000 + ts.nanos

    return get


def _resolve(path: list[str]) -> tuple[str, Callable[[Entry], Any]]:
    """The kind of a field path and a getter of its value in a ``LogEntry`` (or ``_MISSING``).

    proto3 cannot tell an empty string or map from an absent one: both count as absent.
    Inside jsonPayload only a missing key is absent.
    """
    name = ".".join(path)
    top, rest = path[0], path[1:]
    if top == "severity" and not rest:
        return "severity", lambda e: e.severity
    if top in _TIME_FIELDS and not rest:
        return "time", _time_getter(_SNAKE[top])
    if top in _STRING_FIELDS and not rest:
        attr = _SNAKE[top]
        return "string", lambda e: getattr(e, attr) or _MISSING
    if top == "labels" and not rest:
        return "map", lambda e: dict(e.labels) or _MISSING
    if top == "labels" and len(rest) == 1:
        key = rest[0]
        return "string", lambda e: e.labels.get(key) or _MISSING
    if top == "resource":
        if not rest:
            return (
                "map",
                lambda e: (
                    {"type": e.resource.type, "labels": dict(e.resource.labels)}
                    if e.HasField("resource")
                    else _MISSING
                ),
            )
        if rest == ["type"]:
            return "string", lambda e: e.resource.type or _MISSING
        if rest == ["labels"]:
            return "map", lambda e: dict(e.resource.labels) or _MISSING
        if len(rest) == 2 and rest[0] == "labels":
            key = rest[1]
            return "string", lambda e: e.resource.labels.get(key) or _MISSING
    if top == "jsonPayload":
        return ("json" if rest else "map"), _json_getter(rest)
    if top in _UNSUPPORTED_FIELDS:
        raise FilterError(f"field {name!r}: {top} is not supported by the emulator")
    if top in {"severity", "resource", "labels", *_TIME_FIELDS, *_STRING_FIELDS}:
        raise FilterError(f"field {name!r} does not exist in LogEntry")
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), top)
    hint = f" (did you mean {camel}?)" if camel != top else ""
    raise FilterError(f"unknown field {name!r}{hint}")


def _comparison(path: list[str], op: str, value: ValueExpr) -> Predicate:
    kind, get = _resolve(path)
    name = ".".join(path)
    if op == ":" and isinstance(value, _Literal) and value.text == "*" and not value.quoted:
        # "field:*" tests presence.
        return lambda e: get(e) is not _MISSING
    test = _value_predicate(kind, name, op, value)

    def predicate(entry: Entry) -> bool:
        v = get(entry)
        # A comparison on an absent field is false whatever the operator (even != and !~).
        return v is not _MISSING and test(v)

    return predicate


def _global(lit: _Literal) -> Predicate:
    needle = lit.text.lower()

    def predicate(e: Entry) -> bool:
        # Every field but the timestamps, as production's global search reads them.
        texts = [e.log_name, e.resource.type, e.insert_id, e.trace, e.span_id, e.text_payload]
        texts.append(SEVERITY_NAMES.get(e.severity, str(e.severity)))
        texts.extend(e.resource.labels.values())
        texts.extend(e.labels.values())
        if any(needle in t.lower() for t in texts):
            return True
        if e.WhichOneof("payload") == "json_payload":
            return any(_has(_value_to_py(v), needle) for v in e.json_payload.fields.values())
        return False

    return predicate


def _log_id(arg: str) -> Predicate:
    from urllib.parse import quote

    suffix = "/logs/" + quote(arg, safe="")
    return lambda e: e.log_name.endswith(suffix)


# --- parser ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = list(_tokens(text))
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str) -> _Tok:
        if self.tok.kind != kind:
            raise FilterError(f"expected {kind!r} at position {self.tok.pos}, found {self._desc()}")
        return self.take()

    def _desc(self) -> str:
        t = self.tok
        return "end of filter" if t.kind == "end" else repr(t.value or t.kind)

    def _starts_term(self) -> bool:
        return self.tok.kind in ("text", "(", "not", "func")

    def parse(self) -> Predicate:
        if self.tok.kind == "end":
            return lambda e: True
        pred = self.conj()
        if self.tok.kind != "end":
            raise FilterError(f"unexpected {self._desc()} at position {self.tok.pos}")
        return pred

    def conj(self) -> Predicate:
        parts = [self.disj()]
        while self.tok.kind == "and" or self._starts_term():
            if self.tok.kind == "and":
                self.take()
            parts.append(self.disj())
        if len(parts) == 1:
            return parts[0]
        return lambda e: all(p(e) for p in parts)

    def disj(self) -> Predicate:
        parts = [self.unary()]
        while self.tok.kind == "or":
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda e: any(p(e) for p in parts)

    def unary(self) -> Predicate:
        if self.tok.kind == "not":
            self.take()
            inner = self.unary()
            return lambda e: not inner(e)
        return self.primary()

    def primary(self) -> Predicate:
        tok = self.tok
        if tok.kind == "(":
            self.take()
            inner = self.conj()
            self.expect(")")
            return inner
        if tok.kind == "func":
            return self.function()
        if tok.kind != "text":
            raise FilterError(f"expected a comparison at position {tok.pos}, found {self._desc()}")
        self.take()
        if self.tok.kind == "op":
            op = self.take().value
            if any(not seg for seg, _ in tok.segments):
                raise FilterError(f"invalid field name {tok.value!r} at position {tok.pos}")
            return _comparison([seg for seg, _ in tok.segments], op, self.value())
        if len(tok.segments) != 1:
            # An unquoted dotted word alone is a global search for that text.
            return _global(_Literal(tok.value, False))
        text, quoted = tok.segments[0]
        return _global(_Literal(text, quoted))

    def function(self) -> Predicate:
        tok = self.take()
        self.expect("(")
        if tok.value != "log_id":
            raise FilterError(f"function {tok.value}() is not supported by the emulator")
        arg = self.expect("text")
        if len(arg.segments) != 1 or not arg.segments[0][1]:
            raise FilterError("log_id() takes one quoted string")
        self.expect(")")
        return _log_id(arg.segments[0][0])

    # value expressions: resource.type = ("a" OR "b")
    def value(self) -> ValueExpr:
        tok = self.tok
        if tok.kind == "(":
            self.take()
            expr = self.vconj()
            self.expect(")")
            return expr
        if tok.kind != "text":
            raise FilterError(f"expected a value at position {tok.pos}, found {self._desc()}")
        self.take()
        if len(tok.segments) == 1:
            return _Literal(*tok.segments[0])
        return _Literal(tok.value, False)

    def vconj(self) -> ValueExpr:
        parts = [self.vdisj()]
        while self.tok.kind in ("and", "text", "(", "not"):
            if self.tok.kind == "and":
                self.take()
            parts.append(self.vdisj())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def vdisj(self) -> ValueExpr:
        parts = [self.vunary()]
        while self.tok.kind == "or":
            self.take()
            parts.append(self.vunary())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def vunary(self) -> ValueExpr:
        if self.tok.kind == "not":
            self.take()
            return ("not", self.vunary())
        return self.value()


@dataclass(frozen=True)
class LogFilter:
    """A compiled filter: ``LogFilter.parse(text).matches(log_entry_pb)``."""

    text: str
    _predicate: Predicate

    @classmethod
    def parse(cls, text: str) -> LogFilter:
        if len(text) > MAX_FILTER_LENGTH:
            raise FilterError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
        return cls(text, _Parser(text).parse())

    def matches(self, entry: Entry) -> bool:
        return self._predicate(entry)
