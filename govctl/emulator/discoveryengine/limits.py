"""What Vertex AI Search accepts in an import, each rule with its Google source.

Sources (cited again in docs/emulator/discoveryengine.md):

* ``Document.Content`` in googleapis ``google/cloud/discoveryengine/v1/document.proto``: the
  supported ``mime_type`` values; a ``uri`` file "is 2.5 MB for text-based formats, 200 MB for
  other formats"; ``raw_bytes`` at most 1,000,000 bytes; ``Document.id`` "should conform to
  RFC-1034 standard with a length limit of 128 characters".
* ``GcsSource.input_uris`` in ``google/cloud/discoveryengine/v1/import_config.proto``: "A
  request can contain at most 100 files (or 100,000 files if ``data_schema`` is ``content``).
  Each file can be up to 2 GB (or 100 MB if ``data_schema`` is ``content``)"; the pattern it
  shows, ``gs://bucket/directory/*.json``, has its wildcard in the last segment only.
* "Prepare data for ingesting" (cloud.google.com/generative-ai-app-builder/docs/prepare-data):
  unstructured documents in TXT, PDF, HTML, DOCX, PPTX, XLSX (and XLSM); "you can import up to
  100,000 files at a time".
"""

from __future__ import annotations

import re

# Document.Content.mime_type, "Supported types" (the image types need the layout parser, which
# the emulator's data stores never have).
TEXT_TYPES = frozenset(
    {"text/plain", "text/html", "application/xml", "text/xml", "application/json"}
)
OTHER_TYPES = frozenset(
    {
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroenabled.12",
    }
)
LAYOUT_PARSER_TYPES = frozenset({"image/bmp", "image/gif", "image/jpeg", "image/png", "image/tiff"})
# Document.Content.uri: "The maximum file size is 2.5 MB for text-based formats, 200 MB for
# other formats." Read as decimal megabytes (the stricter reading of "MB").
MAX_TEXT_BYTES = 2_500_000
MAX_OTHER_BYTES = 200_000_000
# GcsSource: a file of a `content` import "can be up to ... 100 MB".
MAX_CONTENT_FILE_BYTES = 100_000_000
# Document.Content.raw_bytes: "The maximum length is 1,000,000 bytes".
MAX_RAW_BYTES = 1_000_000
# GcsSource.input_uris: files one request may match.
MAX_CONTENT_FILES = 100_000
MAX_DOCUMENT_FILES = 100
# Prepare data: "you can import up to 100,000 files at a time" (documents linked by a JSONL
# manifest included).
MAX_DOCUMENTS = 100_000
MAX_ID_CHARS = 128

# RFC 1034 (section 3.5 "preferred name syntax"): labels of letters, digits and hyphens, at most
# 63 characters, not starting or ending with a hyphen, joined by dots. A label may start with a
# digit here: the service's own ids for `content` imports are hex strings that often do, and
# Google's metadata example uses ids "1" to "4" (filter-search-metadata page).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ID_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def mime_problem(mime: str) -> str | None:
    """Why ``mime`` cannot be imported, or None when it can."""
    if mime in TEXT_TYPES or mime in OTHER_TYPES:
        return None
    if mime in LAYOUT_PARSER_TYPES:
        return f"MIME type {mime!r} needs the layout parser, which this data store does not use"
    supported = ", ".join(sorted(TEXT_TYPES | OTHER_TYPES))
    return f"unsupported MIME type {mime or '(none)'!r}: expected one of {supported}"


def size_limit(mime: str) -> int:
    """The largest file a document of this type may link to by URI."""
    return MAX_TEXT_BYTES if mime in TEXT_TYPES else MAX_OTHER_BYTES


def id_problem(doc_id: str) -> str | None:
    """Why ``doc_id`` breaks Document.id's rule, or None when it keeps it."""
    if not doc_id:
        return "the document has no id (data_schema 'document' needs a valid Document.id)"
    if len(doc_id) > MAX_ID_CHARS or not _ID_RE.fullmatch(doc_id):
        return (
            f"invalid document id {doc_id[:200]!r}: ids follow RFC-1034 (letters, digits and "
            f"'-', labels of at most 63 characters joined by '.'), at most {MAX_ID_CHARS} "
            "characters"
        )
    return None


def wildcard_problem(obj: str) -> str | None:
    """Why an input URI's object pattern is refused: a wildcard before its last segment."""
    directory = obj.rpartition("/")[0]
    if re.search(r"[*?\[]", directory):
        return (
            "a wildcard may appear only in the last path segment, as GcsSource documents "
            "(gs://bucket/directory/*.json)"
        )
    return None
