"""Google API errors as govctl errors: the reason in one line, and the fix.

Every adapter call runs inside :func:`translate`, so no ``google.api_core`` exception (or
traceback) reaches the operator. ``what`` names the thing being done ("get job X").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from govctl.errors import CloudError, GovctlError, NotFound, PermissionDenied

# What a 403 usually means for the calls govctl makes (GCP-FACTS.md, IAM).
DENIED_FIX = (
    "check your roles with `govctl doctor` (deploying needs roles/run.developer, "
    "roles/cloudscheduler.admin and iam.serviceAccounts.actAs on the job's service account)"
)


def _message(err: BaseException) -> str:
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())


@contextmanager
def translate(
    what: str, *, not_found: str | None = None, denied: str | None = None
) -> Iterator[None]:
    """Re-raise Google client errors as :class:`GovctlError` (exit 1) with a fix."""
    from google.api_core import exceptions as gex
    from google.auth import exceptions as auth_ex

    try:
        yield
    except GovctlError:
        raise
    except gex.NotFound as err:
        raise NotFound(f"{what}: not found ({_message(err)})", fix=not_found) from None
    except gex.PermissionDenied as err:
        raise PermissionDenied(
            f"{what}: permission denied ({_message(err)})", fix=denied or DENIED_FIX
        ) from None
    except gex.Unauthenticated as err:
        raise CloudError(
            f"{what}: not authenticated ({_message(err)})",
            fix="run `gcloud auth application-default login`",
            reason="UNAUTHENTICATED",
        ) from None
    except gex.FailedPrecondition as err:
        raise CloudError(f"{what}: {_message(err)}", reason="FAILED_PRECONDITION") from None
    except gex.Aborted as err:
        raise CloudError(
            f"{what}: changed by someone else meanwhile ({_message(err)})",
            fix="rerun the command to see the new state",
            reason="ABORTED",
        ) from None
    except (gex.ServiceUnavailable, gex.DeadlineExceeded, gex.RetryError) as err:
        raise CloudError(
            f"{what}: the API did not answer ({_message(err)})",
            fix="check your network, or `govctl emulator status` when GOVCTL_EMULATOR_HOST "
            "is set, and retry",
            reason="UNAVAILABLE"
            if isinstance(err, gex.ServiceUnavailable)
            else "DEADLINE_EXCEEDED",
        ) from None
    except gex.GoogleAPICallError as err:
        code = getattr(err, "grpc_status_code", None)
        reason = code.name if code is not None else type(err).__name__
        raise CloudError(f"{what}: {reason}: {_message(err)}", reason=reason) from None
    except auth_ex.DefaultCredentialsError:
        raise CloudError(
            f"{what}: no Google credentials found",
            fix="run `gcloud auth application-default login` (or set GOVCTL_EMULATOR_HOST "
            "to use `govctl emulator`)",
            reason="NO_CREDENTIALS",
        ) from None
