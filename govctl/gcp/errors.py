"""Google API errors as govctl errors: the reason in one line, and the fix.

Every adapter call runs inside :func:`translate`, so no ``google.api_core`` exception (or
traceback) reaches the operator. ``what`` names the thing being done ("get job X").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from govctl.errors import (
    ApiDisabled,
    CloudError,
    GovctlError,
    NotFound,
    PermissionDenied,
    Unanswered,
)

# What a 403 usually means for the calls govctl makes (GCP-FACTS.md, IAM).
DENIED_FIX = (
    "check your roles with `govctl doctor` (deploying needs roles/run.developer, "
    "roles/cloudscheduler.admin and iam.serviceAccounts.actAs on the job's service account)"
)


# APIs `govctl setup` enables only when the settings use them (govctl.services.apis).
SETUP_ENABLES_WHEN = {
    "secretmanager.googleapis.com": "once [job] secrets is set",
    "discoveryengine.googleapis.com": "with --with-index or an [index] section",
}


def service_disabled(what: str, err: BaseException) -> ApiDisabled | None:
    """Google's refusal of a call to a disabled API (an ``ErrorInfo`` of reason
    ``SERVICE_DISABLED``, googleapis ``google/api/error_reason.proto``), as govctl says it."""
    if getattr(err, "reason", None) != "SERVICE_DISABLED":
        return None
    meta = dict(getattr(err, "metadata", None) or {})
    api = meta.get("service", "")
    title = meta.get("serviceTitle") or api
    project = meta.get("containerInfo") or meta.get("consumer", "").removeprefix("projects/")
    when = SETUP_ENABLES_WHEN.get(api)
    fix = (f"run `govctl setup`{f' ({when})' if when else ''} (or `gcloud services enable "
           f"{api} --project {project}`)")  # fmt: skip
    return ApiDisabled(
        f"{what}: the {title} ({api}) is disabled in project {project}",
        api=api, project=project, fix=fix,
    )  # fmt: skip


def _denied(what: str, err: BaseException, denied: str | None) -> GovctlError:
    disabled = service_disabled(what, err)
    if disabled is not None:
        return disabled
    return PermissionDenied(
        f"{what}: permission denied ({_message(err)})", fix=denied or DENIED_FIX
    )


def _message(err: BaseException) -> str:
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())


NO_ANSWER_FIX = (
    "check your network, or `govctl emulator status` when GOVCTL_EMULATOR_HOST is set, and retry"
)


@contextmanager
def translate(
    what: str, *, not_found: str | None = None, denied: str | None = None
) -> Iterator[None]:
    """Re-raise Google client errors as :class:`GovctlError` (exit 1) with a fix."""
    from google.api_core import exceptions as gex
    from google.auth import exceptions as auth_ex

    try:
        yield
    except Unanswered as err:  # from beneath the library (gcp.deadlines): say what was done
        raise err.during(what) from None
    except GovctlError:
        raise
    except (gex.GoogleAPICallError, gex.RetryError) as err:
        raise _unanswered(what, err) or _refused(what, err, not_found, denied) from None
    except auth_ex.DefaultCredentialsError:
        raise CloudError(
            f"{what}: no Google credentials found",
            fix="run `gcloud auth application-default login` (or set GOVCTL_EMULATOR_HOST "
            "to use `govctl emulator`)",
            reason="NO_CREDENTIALS",
        ) from None


def _unanswered(what: str, err: Exception) -> GovctlError | None:
    """The error for a call that got no answer, or None when it got one."""
    from google.api_core import exceptions as gex

    if isinstance(err, gex.RetryError) and isinstance(err.cause, Unanswered):
        return err.cause.during(what)  # a patient caller's retries ran out
    if isinstance(err, gex.ServiceUnavailable | gex.DeadlineExceeded | gex.RetryError):
        unavailable = isinstance(err, gex.ServiceUnavailable)
        return CloudError(
            f"{what}: the API did not answer ({_message(err)})",
            fix=NO_ANSWER_FIX,
            reason="UNAVAILABLE" if unavailable else "DEADLINE_EXCEEDED",
        )
    return None


def _refused(what: str, err: Exception, not_found: str | None, denied: str | None) -> GovctlError:
    """The error for a call the API answered with a refusal."""
    from google.api_core import exceptions as gex

    if isinstance(err, gex.NotFound):
        return NotFound(f"{what}: not found ({_message(err)})", fix=not_found)
    if isinstance(err, gex.PermissionDenied):
        return _denied(what, err, denied)
    if isinstance(err, gex.Unauthenticated):
        return CloudError(
            f"{what}: not authenticated ({_message(err)})",
            fix="run `gcloud auth application-default login`",
            reason="UNAUTHENTICATED",
        )
    if isinstance(err, gex.FailedPrecondition):
        return CloudError(f"{what}: {_message(err)}", reason="FAILED_PRECONDITION")
    if isinstance(err, gex.Aborted):
        return CloudError(
            f"{what}: changed by someone else meanwhile ({_message(err)})",
            fix="rerun the command to see the new state",
            reason="ABORTED",
        )
    code = getattr(err, "grpc_status_code", None)
    reason = code.name if code is not None else type(err).__name__
    return CloudError(f"{what}: {reason}: {_message(err)}", reason=reason)
