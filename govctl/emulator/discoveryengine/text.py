"""The emulator's search: plain keyword matching over the imported documents' text.

Vertex AI Search ranks with language models; here a document matches when it contains every
word of the query (case-insensitive), and more occurrences rank higher. Good enough to prove
that a document was imported and is findable by a word in it, which is what govctl checks.
"""

from __future__ import annotations

import html
import re

_WORD = re.compile(r"\w+", re.UNICODE)
SNIPPET_CHARS = 160


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def score(text: str, terms: list[str]) -> int:
    """How often the terms occur in ``text``; 0 unless every term occurs."""
    counts = [len(re.findall(rf"(?i)\b{re.escape(t)}\b", text)) for t in terms]
    return sum(counts) if counts and all(counts) else 0


def snippet(text: str, terms: list[str]) -> str:
    """About SNIPPET_CHARS characters around the first term, the terms in ``<b>…</b>`` and the
    rest HTML-escaped, as Vertex AI Search's snippets are."""
    first = len(text)
    for term in terms:
        m = re.search(rf"(?i)\b{re.escape(term)}\b", text)
        if m:
            first = min(first, m.start())
    if first == len(text):
        first = 0
    start = max(0, first - SNIPPET_CHARS // 3)
    if start:
        # Begin at a word, past any rule of punctuation (digests separate files with "====").
        rule = re.compile(r"\s+[^\w\s]*\s*").search(text, start, first)
        start = rule.end() if rule else start
    piece = " ".join(text[start : start + SNIPPET_CHARS].split())
    out = html.escape(piece)
    for term in terms:
        out = re.sub(rf"(?i)\b({re.escape(html.escape(term))})\b", r"<b>\1</b>", out)
    return ("..." if start else "") + out + ("..." if start + SNIPPET_CHARS < len(text) else "")
