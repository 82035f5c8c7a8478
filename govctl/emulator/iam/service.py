"""IAM surfaces of the loopback cloud: project IAM policies, service accounts, enabled APIs.

Three Google APIs share one per-project record here, as they share the project in production
(see docs/emulator/iam.md):

- :mod:`.projects`: the record, and ``google.cloud.resourcemanager.v3.Projects``.
- :mod:`.service_accounts`: ``google.iam.admin.v1.IAM``.
- :mod:`.service_usage`: ``google.api.serviceusage.v1.ServiceUsage``.

This module wires them into one :class:`Service` and answers the other services' questions.
"""

from __future__ import annotations

from typing import Any

from google.cloud import iam_admin_v1
from google.iam.v1 import policy_pb2

from govctl.emulator.apis import Bound
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.iam import roles
from govctl.emulator.iam.projects import (
    Project,
    Projects,
    ProjectsApi,
    default_policy,
    number_for,
    scheduler_agent,
)
from govctl.emulator.iam.service_accounts import ServiceAccountsApi
from govctl.emulator.iam.service_usage import ENABLED_IN_NEW_PROJECTS, ServiceUsageApi
from govctl.emulator.store import copy


class IamService(Service):
    key = "iam"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.projects = Projects(self, ENABLED_IN_NEW_PROJECTS)
        self.projects_api = ProjectsApi(self, self.projects)
        self.accounts_api = ServiceAccountsApi(self, self.projects)
        self.usage_api = ServiceUsageApi(self, self.projects)

    # cross-service contract ---------------------------------------------------------------
    def project_iam_policy(self, project: str) -> policy_pb2.Policy:
        """The project's policy (id or number); any project id gets the default policy."""
        with self.lock:
            known = self.projects.known(project)
            if known is not None:
                return copy(known.policy)
        return default_policy(number_for(project))

    def scheduler_agent(self, project: str) -> str:
        """Cloud Scheduler's service agent of the project (id or number), as a member."""
        with self.lock:
            known = self.projects.known(project)
            return scheduler_agent(known.number if known else number_for(project))

    def allows(self, policy: policy_pb2.Policy, member: str, permission: str) -> bool:
        return roles.allows(policy, member, permission)

    def project_id(self, project: str) -> str:
        """A project number the emulator has handed out, as its id; anything else unchanged."""
        with self.lock:
            known = self.projects.known(project)
            return known.project_id if known else project

    def service_account(self, email: str) -> iam_admin_v1.ServiceAccount | None:
        """The service account with this email in any project (None if there is none)."""
        with self.lock:
            return self.accounts_api.find(email)

    def service_account_named(self, name: str) -> iam_admin_v1.ServiceAccount | None:
        """The account ``projects/P/serviceAccounts/EMAIL_OR_UNIQUE_ID`` names (None if none;
        RpcError INVALID_ARGUMENT for a malformed name)."""
        with self.lock:
            return self.accounts_api.named(name)

    def project_number(self, project: str) -> str:
        """The project's number (the project, by id or number, is made on first sight)."""
        with self.lock:
            return self.projects.get(project).number

    # wiring and persistence -------------------------------------------------------------------
    def rpcs(self) -> list[Bound]:
        return [self.projects_api.rpcs(), self.accounts_api.rpcs(), self.usage_api.rpcs()]

    def dump(self) -> Any:
        return {"projects": [p.dump() for p in self.projects.by_id.values()]}

    def load(self, data: Any) -> None:
        for rec in (data or {}).get("projects", []):
            proj = Project.load(rec)
            self.projects.by_id[proj.project_id] = proj
