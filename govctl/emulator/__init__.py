"""The loopback cloud: real Google gRPC protocols served on 127.0.0.1.

``from govctl.emulator import Emulator`` is the Python entry point (a context manager);
``govctl emulator start`` is the command-line one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from govctl.emulator.server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    # Lazy: importing a submodule (e.g. govctl.emulator.images) must not pull in grpc.
    if name == "Emulator":
        from govctl.emulator.server import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
