"""The embedded sample feed, for a project on `govctl emulator`: the default feed is on the
internet (GitHub), which a development machine, and the emulator's job, may not reach.

The sample is the demo's (``ingestion/sample/repos.json``, as ``make demo`` uses it): its
repositories are created as local git repositories and the feed names them by ``file://`` URL,
which the job reads only with ``--allow-local``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DIR = ".govctl-sample"
ALLOW_LOCAL = "--allow-local"


@dataclass(frozen=True)
class Sample:
    feed: str  # file:// URL of the feed
    directory: Path  # where the repositories are
    repositories: int  # how many the feed names that exist


def create(directory: Path) -> Sample:
    """Create (or recreate: the commits are fixed, so identical) the sample repositories and
    their feed under ``directory``."""
    import shutil

    from ingestion.demo import build

    if shutil.which("git") is None:
        from govctl.errors import GovctlError

        raise GovctlError("git is not installed: the sample repositories are git repositories",
                          fix="install git, or pass --no-sample-feed")  # fmt: skip
    feed = build(directory)
    made = sum(1 for e in json.loads(feed.read_text(encoding="utf-8")) if "url" in e
               and str(e["url"]).startswith("file://"))  # fmt: skip
    return Sample(feed.resolve().as_uri(), directory.resolve(), made)
