"""Path templates of ``google.api.http`` rules, matched against request paths.

The grammar and matching rules are those of ``google/api/http.proto`` (googleapis):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

``*`` matches one segment, ``**`` the rest of the path; ``{name}`` is ``{name=*}``. A
variable matching one segment is percent-decoded whole; one spanning several keeps ``%2F``
encoded (http.proto: "Path template syntax", single- and multi-segment variable expansion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_VARIABLE = re.compile(r"\{([A-Za-z_][\w.]*)(?:=([^}]*))?\}")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Template:
    text: str
    regex: re.Pattern[str]
    fields: tuple[tuple[str, bool], ...]  # (field path, spans several segments)
    literals: int  # literal segments: the more, the more specific

    def match(self, path: str) -> dict[str, str] | None:
        """The variables' values (decoded) when ``path`` (still percent-encoded) matches."""
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for i, (field, multi) in enumerate(self.fields):
            raw = m.group(f"v{i}")
            values[field] = (
                unquote(raw.replace("%2F", "%252F").replace("%2f", "%252f"))
                if multi
                else unquote(raw)
            )
        return values

    def expand(self, values: dict[str, str]) -> str:
        """The path for ``values`` (tests and documentation examples)."""
        return _VARIABLE.sub(lambda m: values[m.group(1)], self.text)


def _segments(text: str, where: str) -> tuple[str, int, bool]:
    """Regex of ``text`` (segments without variables), its literal count, and whether it
    may span several segments."""
    parts: list[str] = []
    literals = 0
    multi = False
    for seg in text.split("/"):
        if seg == "*":
            parts.append(r"[^/]+")
        elif seg == "**":
            parts.append(r".+")
            multi = True
        elif seg and not set(seg) & set("{}*=:"):
            parts.append(re.escape(seg))
            literals += 1
        else:
            raise TemplateError(f"bad segment {seg!r} in {where!r}")
    return "/".join(parts), literals, multi or len(parts) > 1


def compile_template(text: str) -> Template:
    if not text.startswith("/"):
        raise TemplateError(f"template {text!r} does not start with '/'")
    body, verb = text, ""
    # The verb follows the last segment; a colon inside a variable is not one.
    last = text.rsplit("/", 1)[1]
    if ":" in last and "}" not in last.rsplit(":", 1)[1]:
        body, verb = text.rsplit(":", 1)
    pattern: list[str] = []
    fields: list[tuple[str, bool]] = []
    literals = 0
    pos = 0
    for m in _VARIABLE.finditer(body):
        plain = body[pos : m.start()]
        if plain.strip("/"):
            regex, count, _ = _segments(plain.strip("/"), text)
            pattern.append("/" + regex + "/")
            literals += count
        else:
            pattern.append("/")
        regex, count, multi = _segments(m.group(2) or "*", text)
        pattern.append(f"(?P<v{len(fields)}>{regex})")
        literals += count
        fields.append((m.group(1), multi))
        pos = m.end()
    tail = body[pos:]
    if tail.strip("/"):
        regex, count, _ = _segments(tail.strip("/"), text)
        pattern.append("/" + regex)
        literals += count
    source = "".join(pattern).replace("//", "/")
    if verb:
        source += ":" + re.escape(verb)
        literals += 1
    return Template(text, re.compile(source), tuple(fields), literals)
