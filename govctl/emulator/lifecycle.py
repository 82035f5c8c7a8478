"""The one shape every local server here has: ``start()``, ``stop()``, and a with-block."""

from __future__ import annotations

from typing import Self


class Server:
    """Entering a with-block starts the server, leaving it stops the server (even on error)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
