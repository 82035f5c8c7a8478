"""Cloud Billing v1 (``google.cloud.billing.v1.CloudBilling``): which projects have billing.

GetProjectBillingInfo and UpdateProjectBillingInfo only. Every project starts linked to one
emulated billing account (:data:`DEFAULT_ACCOUNT`), so billing is enabled; tests unlink it
(``billing_account_name=""``) to produce a project whose billing is disabled, as
``gcloud billing projects unlink`` does.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import billing_v1

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Service
from govctl.emulator.rpc import invalid_argument, matched

DEFAULT_ACCOUNT = "billingAccounts/012345-6789AB-CDEF01"
_ACCOUNT_RE = re.compile(r"billingAccounts/[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}")
_NAME_RE = re.compile(r"projects/([^/]+)")


class ProjectBillingService(Service):
    key = "billing_info"

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        # project id -> linked billing account ("" = unlinked); absent = the default account
        self.accounts: dict[str, str] = {}

    def rpcs(self) -> list[Bound]:
        api = gapic_api("google.cloud.billing_v1.services.cloud_billing")
        return [
            api.bind(
                {
                    "GetProjectBillingInfo": self.get_info,
                    "UpdateProjectBillingInfo": self.update_info,
                }
            )
        ]

    def _project(self, name: str) -> str:
        m = matched(_NAME_RE, name, f"invalid project name {name!r}: want projects/PROJECT_ID")
        # The IAM service owns projects: it validates the id and maps a number to its id.
        iam = self.cloud.service("iam")
        with iam.lock:
            return str(iam.projects.get(m.group(1)).project_id)

    def _info(self, project: str) -> billing_v1.ProjectBillingInfo:
        account = self.accounts.get(project, DEFAULT_ACCOUNT)
        return billing_v1.ProjectBillingInfo(
            name=f"projects/{project}/billingInfo",
            project_id=project,
            billing_account_name=account,
            billing_enabled=bool(account),
        )

    def get_info(self, request: billing_v1.GetProjectBillingInfoRequest, context: Any) -> Any:
        project = self._project(request.name)
        with self.lock:
            return self._info(project)

    def update_info(self, request: billing_v1.UpdateProjectBillingInfoRequest, context: Any) -> Any:
        project = self._project(request.name)
        account = request.project_billing_info.billing_account_name
        if account and not _ACCOUNT_RE.fullmatch(account):
            raise invalid_argument(
                f"invalid billing account name {account!r}: want "
                "billingAccounts/XXXXXX-XXXXXX-XXXXXX (or empty to disable billing)"
            )
        with self.lock:
            self.accounts[project] = account
            self.changed()
            return self._info(project)

    def dump(self) -> Any:
        return dict(self.accounts)

    def load(self, data: Any) -> None:
        self.accounts = dict(data or {})
