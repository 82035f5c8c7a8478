"""Waiting for a long-running operation (``google.api_core.operation.Operation``).

One place for it, so every wait has the same deadline and polling: ``Operation.result``
carries no type annotations, and its default first poll waits a whole second, which the
emulator's and most of Cloud Run's operations do not need.
"""

from __future__ import annotations

from typing import Any

TIMEOUT_S = 300.0


def result(operation: Any, *, timeout: float = TIMEOUT_S) -> Any:
    """The operation's response once it is done; raises its error (a Google API exception,
    translated by the caller) or a timeout after ``timeout`` seconds."""
    from google.api_core.future import polling

    fast = polling.DEFAULT_POLLING.with_delay(initial=0.2, maximum=2.0, multiplier=1.5)
    return operation.result(polling=fast, timeout=timeout)
