"""The service account builds run as, for tests that build without `govctl setup`.

Cloud Build runs a build as the account it names, or else as the project's default, which on a
project new to Cloud Build holds no role (docs/emulator/cloudbuild.md, "Identity"). What
`govctl setup` makes (services/build_account.py) is made here directly, with the writer role on
the project rather than on the repository: a test's repository may not exist yet.
"""

from __future__ import annotations

from govctl.gcp import iam
from govctl.services import build_account


def build_account_for(project: str) -> str:
    """``govreposcrape-build@PROJECT.iam.gserviceaccount.com``, made if missing, allowed to
    write build logs and push images in the project; its email."""
    email = f"govreposcrape-build@{project}.iam.gserviceaccount.com"
    if iam.service_account(project, email) is None:
        iam.create_service_account(project, "govreposcrape-build")
    for role in (build_account.LOG_WRITER, build_account.PUSHER):
        iam.grant_on_project(project, role, f"serviceAccount:{email}")
    return email
