"""Does it exist? The service account and bucket a deployment relies on but does not create."""

from __future__ import annotations

from govctl.errors import NotFound
from govctl.gcp import clients
from govctl.gcp.errors import translate


def service_account_exists(project: str, email: str) -> bool:
    try:
        with translate(f"get service account {email}"):
            clients.iam().get_service_account(name=f"projects/{project}/serviceAccounts/{email}")
    except NotFound:
        return False
    return True


def bucket_exists(project: str, name: str) -> bool:
    with translate(f"get bucket gs://{name}"):
        return clients.storage_client(project).lookup_bucket(name) is not None
