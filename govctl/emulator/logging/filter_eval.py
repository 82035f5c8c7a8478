"""Evaluating a Cloud Logging filter: predicates over raw ``LogEntry`` protobufs.

:mod:`.filter_parse` builds a filter out of the constructors here (:func:`comparison`,
:func:`global_search`, :func:`log_id`, :func:`all_of`, :func:`any_of`). Each comparison reads
its one field (timestamps as integer nanoseconds, severity as its number), so a scan of many
entries builds no intermediate objects. What cannot be evaluated raises :class:`FilterError`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2

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


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    text: str
    quoted: bool


ValueExpr = Any  # Literal | tuple("and"|"or", list) | tuple("not", expr)


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


def _leaf(kind: str, name: str, op: str, lit: Literal) -> Callable[[Any], bool]:
    """A test of one present field value against one literal."""
    if op == ":":
        return _has_test(kind, name, lit.text)
    if op in ("=~", "!~"):
        return _regex_test(kind, name, op, lit.text)
    return _ordered_test(kind, name, op, lit)


def _has_test(kind: str, name: str, text: str) -> Callable[[Any], bool]:
    needle = text.lower()
    if kind == "severity":
        return lambda v: needle in SEVERITY_NAMES.get(v, str(v)).lower()
    if kind == "time":
        raise FilterError(f"operator ':' is not supported on {name}; use =, <, <=, >, >=")
    return lambda v: _has(v, needle)


def _regex_test(kind: str, name: str, op: str, text: str) -> Callable[[Any], bool]:
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


def _ordered_test(kind: str, name: str, op: str, lit: Literal) -> Callable[[Any], bool]:
    """=, !=, <, <=, >, >=: the field's kind decides how the literal is read."""
    compare = _ORDER[op]
    text = lit.text
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
    return _dynamic_test(op, lit)


def _dynamic_test(op: str, lit: Literal) -> Callable[[Any], bool]:
    """An ordered comparison inside jsonPayload: the stored value decides how the literal is
    read (number, boolean, NULL_VALUE or string)."""
    compare = _ORDER[op]
    text = lit.text
    as_number = _number(text)
    as_bool = {"true": True, "false": False}.get(text.lower()) if not lit.quoted else None
    is_null = text == "NULL_VALUE" and not lit.quoted
    # A null matches "= NULL_VALUE" and "!= anything else"; no ordering applies to it.
    null_result = is_null if op == "=" else (not is_null if op == "!=" else False)

    def dynamic(v: Any) -> bool:
        if isinstance(v, list):
            return any(dynamic(x) for x in v)
        if v is None:
            return null_result
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
    if isinstance(expr, Literal):
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


# A field's kind ("severity", "time", "string", "map" or "json") and its getter.
Field = tuple[str, Callable[[Entry], Any]]


def _string_getter(attr: str) -> Callable[[Entry], Any]:
    return lambda e: getattr(e, attr) or _MISSING


# The top-level fields without subfields: their kind and getter.
_SCALARS: dict[str, Field] = {
    "severity": ("severity", lambda e: e.severity),
    "timestamp": ("time", _time_getter("timestamp")),
    "receiveTimestamp": ("time", _time_getter("receive_timestamp")),
    "logName": ("string", _string_getter("log_name")),
    "insertId": ("string", _string_getter("insert_id")),
    "textPayload": ("string", _string_getter("text_payload")),
    "trace": ("string", _string_getter("trace")),
    "spanId": ("string", _string_getter("span_id")),
}


def _labels_field(rest: list[str]) -> Field | None:
    if not rest:
        return "map", lambda e: dict(e.labels) or _MISSING
    if len(rest) == 1:
        key = rest[0]
        return "string", lambda e: e.labels.get(key) or _MISSING
    return None


def _resource_field(rest: list[str]) -> Field | None:
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
    return None


def _json_field(rest: list[str]) -> Field | None:
    return ("json" if rest else "map"), _json_getter(rest)


# The top-level fields with subfields: the field (or None) a path below them names.
_NESTED: dict[str, Callable[[list[str]], Field | None]] = {
    "labels": _labels_field,
    "resource": _resource_field,
    "jsonPayload": _json_field,
}


def _resolve(path: list[str]) -> Field:
    """The kind of a field path and a getter of its value in a ``LogEntry`` (or ``_MISSING``).

    proto3 cannot tell an empty string or map from an absent one: both count as absent.
    Inside jsonPayload only a missing key is absent.
    """
    name = ".".join(path)
    top, rest = path[0], path[1:]
    found = _SCALARS.get(top) if not rest else None
    if found is None and top in _NESTED:
        found = _NESTED[top](rest)
    if found is not None:
        return found
    if top in _UNSUPPORTED_FIELDS:
        raise FilterError(f"field {name!r}: {top} is not supported by the emulator")
    if top in _SCALARS or top in _NESTED:
        raise FilterError(f"field {name!r} does not exist in LogEntry")
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), top)
    hint = f" (did you mean {camel}?)" if camel != top else ""
    raise FilterError(f"unknown field {name!r}{hint}")


def comparison(path: list[str], op: str, value: ValueExpr) -> Predicate:
    kind, get = _resolve(path)
    name = ".".join(path)
    if op == ":" and isinstance(value, Literal) and value.text == "*" and not value.quoted:
        # "field:*" tests presence.
        return lambda e: get(e) is not _MISSING
    test = _value_predicate(kind, name, op, value)

    def predicate(entry: Entry) -> bool:
        v = get(entry)
        # A comparison on an absent field is false whatever the operator (even != and !~).
        return v is not _MISSING and test(v)

    return predicate


def global_search(lit: Literal) -> Predicate:
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


def log_id(arg: str) -> Predicate:
    from urllib.parse import quote

    suffix = "/logs/" + quote(arg, safe="")
    return lambda e: e.log_name.endswith(suffix)


def all_of(parts: list[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else lambda e: all(p(e) for p in parts)


def any_of(parts: list[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else lambda e: any(p(e) for p in parts)


def negation(inner: Predicate) -> Predicate:
    return lambda e: not inner(e)
