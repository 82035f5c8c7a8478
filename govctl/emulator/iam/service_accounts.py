"""IAM Admin v1 service accounts (``google.iam.admin.v1.IAM``), kept in their project's record.

CreateServiceAccount, GetServiceAccount, ListServiceAccounts, DeleteServiceAccount.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

import grpc
from google.cloud import iam_admin_v1
from google.iam.v1 import iam_policy_pb2
from google.protobuf import empty_pb2

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Service
from govctl.emulator.iam import roles
from govctl.emulator.iam.projects import DEFAULT_OWNER, Project, Projects, check_permissions
from govctl.emulator.rpc import Paging, RpcError, invalid_argument, not_found

ACCOUNT_ID_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])$")
# ListServiceAccountsRequest.page_size: "The default is 20, and the maximum is 100" (iam.proto).
_PAGING = Paging(default=20, maximum=100)


class ServiceAccountsApi:
    def __init__(self, service: Service, projects: Projects) -> None:
        self.svc = service
        self.projects = projects

    def rpcs(self) -> Bound:
        return gapic_api("google.cloud.iam_admin_v1.services.iam").bind(
            {
                "CreateServiceAccount": self.create_service_account,
                "GetServiceAccount": self.get_service_account,
                "ListServiceAccounts": self.list_service_accounts,
                "DeleteServiceAccount": self.delete_service_account,
                "DisableServiceAccount": self.disable_service_account,
                "EnableServiceAccount": self.enable_service_account,
                "TestIamPermissions": self.test_iam_permissions,
            }
        )

    def find(self, email: str) -> iam_admin_v1.ServiceAccount | None:
        """The service account with this email in any project (caller holds the lock)."""
        for proj in self.projects.by_id.values():
            sa = proj.accounts.get(email.lower())
            if sa is not None:
                return iam_admin_v1.ServiceAccount(sa)
        return None

    def named(self, name: str) -> iam_admin_v1.ServiceAccount | None:
        """The account ``projects/P/serviceAccounts/EMAIL_OR_UNIQUE_ID`` names, or None
        (caller holds the lock; INVALID_ARGUMENT for a malformed name)."""
        try:
            return iam_admin_v1.ServiceAccount(self._account(name)[1])
        except RpcError as err:
            if err.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def _account(self, name: str) -> tuple[Project, iam_admin_v1.ServiceAccount]:
        m = re.fullmatch(r"projects/([^/]+)/serviceAccounts/([^/]+)", name)
        if not m:
            raise invalid_argument(
                f"invalid service account name {name!r}: "
                "want projects/PROJECT_ID/serviceAccounts/EMAIL_OR_UNIQUE_ID"
            )
        project, key = m.group(1), m.group(2).lower()
        candidates = (
            list(self.projects.by_id.values()) if project == "-" else [self.projects.get(project)]
        )
        for proj in candidates:
            for sa in proj.accounts.values():
                if key in (sa.email, sa.unique_id):
                    return proj, sa
        raise not_found(f"Unknown service account: {name}")

    def create_service_account(
        self, request: iam_admin_v1.CreateServiceAccountRequest, context: Any
    ) -> Any:
        account_id = request.account_id
        if not 6 <= len(account_id) <= 30 or not ACCOUNT_ID_RE.fullmatch(account_id):
            raise invalid_argument(
                f"Invalid account_id {account_id!r}: it must be 6 to 30 characters and match "
                "[a-z]([-a-z0-9]*[a-z0-9])"
            )
        template = request.service_account
        if len(template.display_name) > 100:
            raise invalid_argument("display_name must be at most 100 characters")
        if len(template.description) > 256:
            raise invalid_argument("description must be at most 256 characters")
        with self.svc.lock:
            proj = self.projects.get(request.name)
            email = f"{account_id}@{proj.project_id}.iam.gserviceaccount.com"
            if email in proj.accounts:
                raise rpc.already_exists(
                    f"Service account {account_id} already exists within project "
                    f"projects/{proj.project_id}."
                )
            unique_id = str(10**20 + secrets.randbelow(9 * 10**20))
            sa = iam_admin_v1.ServiceAccount(
                name=f"projects/{proj.project_id}/serviceAccounts/{email}",
                project_id=proj.project_id,
                unique_id=unique_id,
                email=email,
                display_name=template.display_name,
                description=template.description,
                etag=base64.b64encode(secrets.token_bytes(6)),
                oauth2_client_id=unique_id,
            )
            proj.accounts[email] = sa
            self.svc.changed()
            return iam_admin_v1.ServiceAccount(sa)

    def get_service_account(
        self, request: iam_admin_v1.GetServiceAccountRequest, context: Any
    ) -> Any:
        with self.svc.lock:
            return iam_admin_v1.ServiceAccount(self._account(request.name)[1])

    def list_service_accounts(
        self, request: iam_admin_v1.ListServiceAccountsRequest, context: Any
    ) -> Any:
        with self.svc.lock:
            proj = self.projects.get(request.name)
            accounts = sorted(proj.accounts.values(), key=lambda sa: sa.email)
        return _PAGING.respond(
            iam_admin_v1.ListServiceAccountsResponse, "accounts", accounts, request
        )

    def delete_service_account(
        self, request: iam_admin_v1.DeleteServiceAccountRequest, context: Any
    ) -> Any:
        with self.svc.lock:
            proj, sa = self._account(request.name)
            del proj.accounts[sa.email]
            self.svc.changed()
        return empty_pb2.Empty()

    def _set_disabled(self, name: str, disabled: bool) -> Any:
        with self.svc.lock:
            _, sa = self._account(name)
            sa.disabled = disabled
            self.svc.changed()
        return empty_pb2.Empty()

    def disable_service_account(
        self, request: iam_admin_v1.DisableServiceAccountRequest, context: Any
    ) -> Any:
        return self._set_disabled(request.name, True)

    def enable_service_account(
        self, request: iam_admin_v1.EnableServiceAccountRequest, context: Any
    ) -> Any:
        return self._set_disabled(request.name, False)

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, context: Any
    ) -> Any:
        """What the caller may do with the account. Service accounts keep no policy of their
        own here, so the answer comes from the project's policy (where roles such as
        roles/iam.serviceAccountUser are usually granted)."""
        check_permissions(request.permissions)
        with self.svc.lock:
            proj, _ = self._account(request.resource)
            held = [p for p in request.permissions if roles.allows(proj.policy, DEFAULT_OWNER, p)]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=held)
