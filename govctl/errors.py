"""One error family for the whole CLI: a one-line message that says what to do."""

from __future__ import annotations


class GovctlError(Exception):
    """A failure the operator can act on. ``str()`` is the whole message; exit 1."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.fix = fix
        super().__init__(f"{message} — {fix}" if fix else message)


class UsageError(GovctlError):
    """Bad input, detected before any API call; exit 2."""

    exit_code = 2


class NotFound(GovctlError):
    pass


class PermissionDenied(GovctlError):
    pass


class CloudError(GovctlError):
    """Any other error a Google API returned, with its reason.

    ``reason`` is the API's status name (``ALREADY_EXISTS``, ``ABORTED``, ``UNAVAILABLE``, …;
    ``NO_CREDENTIALS`` when there were none to send), for callers that react to one kind.
    """

    def __init__(self, message: str, *, fix: str | None = None, reason: str | None = None):
        self.reason = reason
        super().__init__(message, fix=fix)

    @property
    def unreachable(self) -> bool:
        """No answer, or no usable credentials: a refusal it is not."""
        return self.reason in UNREACHABLE


UNREACHABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "UNAUTHENTICATED", "NO_CREDENTIALS"})
