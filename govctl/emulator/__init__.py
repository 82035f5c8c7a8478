"""The loopback cloud: real Google gRPC protocols served on 127.0.0.1.

``from govctl.emulator import Emulator`` is the Python entry point (a context manager);
``govctl emulator start`` is the command-line one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# The emulator forks while its gRPC threads serve calls (task processes and fake-gcs-server
# start through a preexec_fn, so subprocess cannot use posix_spawn). With gRPC's fork support
# on, such a child sometimes aborts (SIGABRT) before it reaches exec: 7 of 480 spawns under
# concurrent RPCs, 0 of 1040 with it off. No child of the emulator uses gRPC before exec, so
# it is turned off here — grpc reads this when first imported, which must come after.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

if TYPE_CHECKING:
    from govctl.emulator.server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    # Lazy: importing a submodule (e.g. govctl.emulator.images) must not pull in grpc.
    if name == "Emulator":
        from govctl.emulator.server import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
