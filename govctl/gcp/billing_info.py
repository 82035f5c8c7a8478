"""Cloud Billing: whether a project has billing enabled (Cloud Run jobs need it)."""

from __future__ import annotations

from dataclasses import dataclass

from govctl.gcp import clients
from govctl.gcp.errors import translate


@dataclass(frozen=True)
class BillingInfo:
    enabled: bool
    account: str  # billingAccounts/XXXXXX-XXXXXX-XXXXXX, or "" when unlinked


def project_billing(project: str) -> BillingInfo:
    with translate(
        f"read the billing of project {project}",
        denied="reading a project's billing needs resourcemanager.projects.get "
        "(roles/viewer or roles/billing.viewer)",
    ):
        info = clients.billing().get_project_billing_info(name=f"projects/{project}")
    return BillingInfo(enabled=bool(info.billing_enabled), account=info.billing_account_name)
