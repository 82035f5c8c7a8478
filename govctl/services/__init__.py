"""What the commands mean (deploy, run, ...), on top of the gcp adapters."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govctl.config import Config


def connect(cfg: Config) -> None:
    """Every Google client made from now on talks to where ``cfg`` says: Google, or the
    loopback cloud (``cfg.cloud``)."""
    from govctl.gcp import clients

    clients.use(cfg.cloud)


@contextmanager
def command_scope() -> Iterator[None]:
    """One command's run: the cloud target its settings chose is forgotten afterwards, so the
    next command (or a test in the same process) resolves its own. A command that made no
    client (``--help``) never loads the client factory, and leaves nothing to forget."""
    loaded = sys.modules.get("govctl.gcp.clients")
    saved = loaded.use(None) if loaded is not None else None
    try:
        yield
    finally:
        loaded = sys.modules.get("govctl.gcp.clients")
        if loaded is not None:
            loaded.use(saved)
