"""Parsing a Cloud Logging filter: the lexer and a recursive-descent parser.

The grammar is in :mod:`.filter`'s docstring. The parser builds the predicate as it goes,
out of :mod:`.filter_eval`'s constructors; anything it cannot build is a :class:`FilterError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from govctl.emulator.logging.filter_eval import (
    FilterError,
    Literal,
    Predicate,
    ValueExpr,
    all_of,
    any_of,
    comparison,
    global_search,
    log_id,
    negation,
)

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


def _word_segments(text: str, i: int, after: bool) -> tuple[list[tuple[str, bool]], int, bool]:
    """The unquoted segments of the word at ``text[i]``, the index after it, and whether the
    path continues with a quoted segment (``a."b c"``). ``after``: segments came before it."""
    word, j = _read_word(text, i)
    if not word:
        raise FilterError(f"unexpected character {text[i]!r} at position {i}")
    # A word may contain dots: split it, keeping a trailing dot as "continues".
    parts = word.split(".")
    cont = word.endswith(".") and j < len(text) and text[j] == '"'
    if cont:
        parts = parts[:-1]
    if after and parts and parts[0] == "":
        parts = parts[1:]
    return [(p, False) for p in parts], j, cont


def _read_path(text: str, i: int) -> tuple[list[tuple[str, bool]], int]:
    """A path or value: words and quoted strings joined by dots, with no spaces between.

    Returns its segments (each with whether it was quoted) and the index after it.
    """
    segments: list[tuple[str, bool]] = []
    while True:
        if text[i : i + 1] == '"':
            value, i = _read_string(text, i)
            segments.append((value, True))
        else:
            parts, i, cont = _word_segments(text, i, bool(segments))
            segments.extend(parts)
            if cont:
                continue
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if text[i : i + 1] == "." and (nxt == '"' or nxt not in _WORD_STOP | {"."}):
            i += 1  # a quoted segment followed by more path: "a b".c
            continue
        return segments, i


def _symbol(text: str, i: int, prev: str) -> tuple[_Tok, int] | None:
    """The parenthesis, operator or '-' (NOT) at ``text[i]`` and the index after it, or None
    where a path, value or keyword starts. ``prev``: the kind of the token before."""
    c = text[i]
    if c in "()":
        return _Tok(c, i), i + 1
    op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
    if op is not None:
        return _Tok("op", i, op), i + len(op)
    if c in "'~!":
        raise FilterError(f"unexpected character {c!r} at position {i}")
    if c == "-" and prev != "op":
        if text.startswith("--", i):
            raise FilterError(f"comments ('--') are not supported (position {i})")
        if i + 1 < len(text) and not text[i + 1].isspace():
            return _Tok("not", i, "-"), i + 1
    return None


def _term(text: str, start: int) -> tuple[_Tok, int]:
    """The keyword, function name or path/value at ``text[start]`` and the index after it."""
    segments, end = _read_path(text, start)
    if len(segments) == 1 and not segments[0][1]:
        word = segments[0][0]
        if word in _KEYWORDS:
            return _Tok(word.lower(), start, word), end
        if word.lower() in {"and", "or", "not"}:
            raise FilterError(
                f"{word!r} at position {start}: boolean operators must be upper case "
                f"({word.upper()}); the emulator does not treat them as search terms"
            )
        if text[end : end + 1] == "(":
            return _Tok("func", start, word), end
    return _Tok("text", start, text[start:end], segments), end


def _tokens(text: str) -> Iterator[_Tok]:
    i = 0
    prev = ""  # the kind of the token before: a '-' after an operator is a negative value
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            yield _Tok("end", i)
            return
        found = _symbol(text, i, prev)
        tok, i = found if found is not None else _term(text, i)
        yield tok
        prev = tok.kind


# --- parser ----------------------------------------------------------------------------------


# How deep parentheses and NOTs may nest. No Google source gives Cloud Logging's limit (its
# documentation gives only the 20,000-character length); Google answers a filter of 5,000
# nested parentheses with INVALID_ARGUMENT (issue 14). 100 is far beyond any real query
# and keeps the recursive parser, and the predicates it builds, within Python's stack.
MAX_DEPTH = 100


class Parser:
    def __init__(self, text: str) -> None:
        self.toks = list(_tokens(text))
        self.i = 0
        self.depth = 0

    @contextmanager
    def _nested(self) -> Iterator[None]:
        """One level deeper: inside parentheses or a NOT."""
        if self.depth >= MAX_DEPTH:
            raise FilterError(
                f"the filter is nested more than {MAX_DEPTH} levels deep (parentheses and NOT) "
                f"at position {self.tok.pos}"
            )
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

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
        return all_of(parts)

    def disj(self) -> Predicate:
        parts = [self.unary()]
        while self.tok.kind == "or":
            self.take()
            parts.append(self.unary())
        return any_of(parts)

    def unary(self) -> Predicate:
        if self.tok.kind == "not":
            with self._nested():
                self.take()
                return negation(self.unary())
        return self.primary()

    def primary(self) -> Predicate:
        tok = self.tok
        if tok.kind == "(":
            with self._nested():
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
            return comparison([seg for seg, _ in tok.segments], op, self.value())
        if len(tok.segments) != 1:
            # An unquoted dotted word alone is a global search for that text.
            return global_search(Literal(tok.value, False))
        text, quoted = tok.segments[0]
        return global_search(Literal(text, quoted))

    def function(self) -> Predicate:
        tok = self.take()
        self.expect("(")
        if tok.value != "log_id":
            raise FilterError(f"function {tok.value}() is not supported by the emulator")
        arg = self.expect("text")
        if len(arg.segments) != 1 or not arg.segments[0][1]:
            raise FilterError("log_id() takes one quoted string")
        self.expect(")")
        return log_id(arg.segments[0][0])

    # value expressions: resource.type = ("a" OR "b")
    def value(self) -> ValueExpr:
        tok = self.tok
        if tok.kind == "(":
            with self._nested():
                self.take()
                expr = self.vconj()
                self.expect(")")
                return expr
        if tok.kind != "text":
            raise FilterError(f"expected a value at position {tok.pos}, found {self._desc()}")
        self.take()
        if len(tok.segments) == 1:
            return Literal(*tok.segments[0])
        return Literal(tok.value, False)

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
            with self._nested():
                self.take()
                return ("not", self.vunary())
        return self.value()
