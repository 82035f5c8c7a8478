"""Which local command runs a task of a Cloud Run job, by the job's container image.

Keys are ``fnmatch`` patterns matched against the whole image reference; the first
pattern that matches wins (``--map-image`` entries come before the defaults). An image no
pattern matches runs the container's ``command`` + ``args`` from the job spec as given.

By default the project's own ingestion image runs ``python -I -u -m ingestion`` with the
interpreter govctl runs under, so the installed package is what executes (``-I``: nothing in
the task's environment or working directory changes what it imports):

- ``REGION-docker.pkg.dev/PROJECT/govreposcrape/ingestion:TAG`` (the Artifact Registry
  name ``govctl deploy`` pushes to), and any registry's ``…/govreposcrape/ingestion…``;
- ``govctl-ingestion:TAG`` and ``…/govctl-ingestion:TAG`` (a local podman/docker build).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable

from govctl.errors import UsageError


def ingestion_command() -> str:
    # -I (isolated): no PYTHON* variable, user site directory or working directory decides
    # what this interpreter imports; only the installed package runs (docs/emulator.md).
    # -u: what PYTHONUNBUFFERED=1 did before -I made the interpreter ignore it (live logs).
    return f"{shlex.quote(sys.executable)} -I -u -m ingestion"


def default_image_map() -> dict[str, str]:
    command = ingestion_command()
    return {
        "*/govreposcrape/ingestion*": command,
        "govctl-ingestion*": command,
        "*/govctl-ingestion*": command,
    }


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)  # as each task's command line will be split
    except ValueError:  # an unbalanced quote
        return []


def parse_map_image(values: Iterable[str]) -> dict[str, str]:
    """``PATTERN=COMMAND`` strings as a map; a malformed one is a usage error (exit 2)."""
    mapping: dict[str, str] = {}
    for value in values:
        pattern, sep, command = value.partition("=")
        if not sep or not pattern.strip() or not _words(command):
            raise UsageError(
                f"invalid --map-image {value!r}: expected PATTERN=COMMAND (COMMAND in shell "
                "words, quotes balanced)",
                fix="e.g. --map-image '*/my-image*=python -m mypkg'",
            )
        mapping[pattern.strip()] = command.strip()
    return mapping


def image_map(values: Iterable[str] = ()) -> dict[str, str]:
    """The map the emulator uses: ``--map-image`` entries first, then the defaults."""
    mapping = parse_map_image(values)
    for pattern, command in default_image_map().items():
        mapping.setdefault(pattern, command)
    return mapping
