"""Who a build runs as, and what that account may do (docs/emulator/cloudbuild.md, "Identity").

- ``Build.service_account`` is ``projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}``, the account
  an email or unique id (google/devtools/cloudbuild/v1/cloudbuild.proto). A build that names
  one must say where its logs go — ``logs_bucket``, the REGIONAL_USER_OWNED_BUCKET
  ``default_logs_bucket_behavior``, or ``logging`` CLOUD_LOGGING_ONLY / NONE — or CreateBuild
  is INVALID_ARGUMENT with :data:`LOGGING_REQUIRED` ("Configure user-specified service
  accounts", section "Set up build logs": with your own service account the logs go to Cloud
  Logging or a user-created bucket, never the default one,
  https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts;
  production's words are quoted in cert-manager/cert-manager#8851, in28minutes/course-material#11
  and GoogleCloudPlatform/terraform-google-dataplex-auto-data-quality#39). The caller must hold
  ``iam.serviceAccounts.actAs`` on it ("the users submitting the build must have the
  iam.serviceAccounts.actAs permission on the service account",
  https://cloud.google.com/build/docs/cloud-build-service-account-updates).
- A build that names none runs as the project's default: since the 2024 change, for projects
  that start using Cloud Build after it, the Compute Engine default service account
  ``PROJECT_NUMBER-compute@developer.gserviceaccount.com`` (same page;
  ``GetDefaultServiceAccount`` answers it). The emulator's projects are such new projects, and
  their policies grant that account nothing (as where an organization enforces
  ``iam.automaticIamGrantsForDefaultServiceAccounts``; without it the account gets
  ``roles/editor``, a case not modelled), so such a build cannot write its log nor push.
- While it runs, the account needs ``logging.logEntries.create`` on the project to write the
  log (``roles/logging.logWriter``; without it no line reaches Cloud Logging and the build
  carries :data:`NO_LOG_WARNING`, as production's build does:
  GoogleCloudPlatform/terraform-google-enterprise-application#120) and
  ``artifactregistry.repositories.uploadArtifacts`` on each repository it pushes to
  (``roles/artifactregistry.writer``; see :mod:`.builder`). Reading the source needs
  ``storage.objects.get``/``list`` on the source bucket (the denial is shown in
  GoogleCloudPlatform/bigquery-dlp-remote-function#70); that is not checked here:
  fake-gcs-server keeps no bucket IAM, which is where govctl grants it.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud.devtools import cloudbuild_v1 as cb

from govctl.emulator.cloud import Cloud
from govctl.emulator.rpc import invalid_argument, permission_denied

Logging = cb.BuildOptions.LoggingMode
NAME_RE = re.compile(r"projects/([^/]+)/serviceAccounts/([^/]+)")
ACT_AS = "iam.serviceAccounts.actAs"
WRITE_LOGS = "logging.logEntries.create"
# The caller of every RPC (docs/emulator/iam.md).
CALLER = "user:emulator@example.com"
LOGGING_REQUIRED = (
    "if 'build.service_account' is specified, the build must either (a) specify "
    "'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
    "build.options.default_logs_bucket_behavior option, or (c) use either CLOUD_LOGGING_ONLY / "
    "NONE logging options"
)
NO_LOG_WARNING = (
    "The service account running this build does not have permission to write logs. To fix "
    "this, grant the Logs Writer (roles/logging.logWriter) role to the service account."
)
_LOGS_CHOSEN = (Logging.CLOUD_LOGGING_ONLY, Logging.STACKDRIVER_ONLY, Logging.NONE)
_NOT_TO_CLOUD_LOGGING = (Logging.NONE, Logging.GCS_ONLY)


def default_account(cloud: Cloud, project: str) -> str:
    """The Compute Engine default service account of ``project`` (its email)."""
    return f"{cloud.service('iam').project_number(project)}-compute@developer.gserviceaccount.com"


def check(cloud: Cloud, build: Any) -> None:
    """CreateBuild's checks of ``build.service_account`` (a raw ``Build`` message)."""
    name = build.service_account
    if not name:
        return
    if not NAME_RE.fullmatch(name):
        raise invalid_argument(
            f"invalid build.service_account {name!r}: expected "
            '"projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}"'
        )
    options = build.options
    bucket_behaviour = cb.BuildOptions.DefaultLogsBucketBehavior.REGIONAL_USER_OWNED_BUCKET
    if not (
        build.logs_bucket
        or options.logging in _LOGS_CHOSEN
        or options.default_logs_bucket_behavior == bucket_behaviour
    ):
        raise invalid_argument(LOGGING_REQUIRED)
    iam = cloud.service("iam")
    account = iam.service_account_named(name)
    if account is None:
        # Production refuses an unknown account too; its wording is not in any source found.
        raise invalid_argument(f"service account {name} does not exist")
    if not iam.allows(iam.project_iam_policy(account.project_id), CALLER, ACT_AS):
        raise permission_denied(
            f"caller does not have permission to act as service account {name} ({ACT_AS})"
        )


def member(cloud: Cloud, build: Any) -> str:
    """The IAM member the build runs as."""
    if not build.service_account:
        return f"serviceAccount:{default_account(cloud, build.project_id)}"
    account = cloud.service("iam").service_account_named(build.service_account)
    if account is not None:
        return f"serviceAccount:{account.email}"
    # Deleted since CreateBuild: the name's account part stands for it (and is granted nothing).
    return f"serviceAccount:{build.service_account.rsplit('/', 1)[-1]}"


def writes_cloud_logging(build: Any) -> bool:
    """Whether the build's logging option sends its lines to Cloud Logging at all."""
    return build.options.logging not in _NOT_TO_CLOUD_LOGGING


def may_log(cloud: Cloud, project: str, who: str) -> bool:
    iam = cloud.service("iam")
    return bool(iam.allows(iam.project_iam_policy(project), who, WRITE_LOGS))
