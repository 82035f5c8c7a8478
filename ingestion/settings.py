"""The job's settings and their defaults, in one place.

``ingestion.cli`` fills :class:`Options` from flags and the environment; ``ingestion.runner``
and ``ingestion.digest`` read the defaults from here, so no module needs the command line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_FEED_URL = (
    "https://uk-x-gov-software-community.github.io/xgov-opensource-repo-scraper/repos.json"
)
DEFAULT_REPO_TIMEOUT = 300.0
# The feed download as a whole, retries included (a trickling server never times out a read).
DEFAULT_FEED_DEADLINE = 300.0
DEFAULT_MAX_FILE_SIZE = 524288
# gitingest's own total limit is 500 MB, far more than anything indexes: Vertex AI Search takes
# text documents up to 10 MB. The cap bounds the whole digest (summary, tree and contents), and
# keeps each in-flight digest small on Cloud Run, whose /tmp is memory.
DEFAULT_MAX_TOTAL_SIZE = 8 * 1024 * 1024
DEFAULT_MAX_FAILURE_RATIO = 0.05
# A feed with fewer valid entries than this share of the last run's is refused (--allow-shrink).
MIN_FEED_SHARE = 0.5
TRUE_WORDS = ("1", "true", "yes")
# GITHUB_TOKEN (from Secret Manager on Cloud Run) authenticates clones from this host only:
# 5,000 requests an hour instead of 60 for anonymous clients (GitHub's REST limits).
GITHUB_HOST = "github.com"
GITHUB_TOKEN_ENV = "GITHUB_TOKEN"
# The storage library's own name for an emulator's URL (fake-gcs-server); read once, by the CLI.
STORAGE_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


@dataclass(frozen=True)
class Options:
    feed: str
    sink: str
    limit: int | None = None
    tasks: int = 1
    task_index: int = 0
    concurrency: int = 4
    force: bool = False
    dry_run: bool = False
    repo_timeout: float = DEFAULT_REPO_TIMEOUT
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE
    max_failure_ratio: float = DEFAULT_MAX_FAILURE_RATIO
    allow_hosts: tuple[str, ...] = ("github.com",)
    allow_local: bool = False
    allow_shrink: bool = False
    feed_deadline: float = DEFAULT_FEED_DEADLINE
    # None: Cloud Storage itself; else the URL of an emulator (anonymous credentials).
    storage_endpoint: str | None = None
    log_level: str = "INFO"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "allow_hosts": list(self.allow_hosts)}
