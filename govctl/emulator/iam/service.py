"""IAM surfaces of the loopback cloud: project IAM policies, service accounts, enabled APIs.

Three Google APIs share one per-project record here, as they share the project in production:

- ``google.cloud.resourcemanager.v3.Projects``: GetProject, GetIamPolicy, SetIamPolicy,
  TestIamPermissions.
- ``google.iam.admin.v1.IAM``: CreateServiceAccount, GetServiceAccount, ListServiceAccounts,
  DeleteServiceAccount.
- ``google.api.serviceusage.v1.ServiceUsage``: ListServices, GetService, BatchGetServices,
  EnableService, BatchEnableServices, DisableService (operations come back finished).

Any well-formed project id exists: it appears, with the default policy below and the APIs a new
project has enabled, the first time anything names it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
from google.cloud import iam_admin_v1, resourcemanager_v3, service_usage_v1
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2, timestamp_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.iam import policy as iam_policy
from govctl.emulator.iam import roles
from govctl.emulator.rpc import Method, RpcError, invalid_argument, not_found
from govctl.emulator.state import from_jsonable, to_jsonable

# The principal every RPC of the emulator is taken to come from (clients use anonymous
# credentials); it owns every project, as the creator of a real project does.
DEFAULT_OWNER = "user:emulator@example.com"

PROJECT_ID_RE = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
PROJECT_NUMBER_RE = re.compile(r"^[0-9]{6,20}$")
ACCOUNT_ID_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MEMBER_KINDS = ("user", "serviceAccount", "group", "domain", "principal", "principalSet")

# name -> (title, enabled in a new project). Google enables a handful of APIs in every new
# project (logging, monitoring, storage, service usage among those govctl uses); the rest
# must be enabled, which is what `govctl setup` does.
SERVICE_CATALOG: dict[str, tuple[str, bool]] = {
    "artifactregistry.googleapis.com": ("Artifact Registry API", False),
    "cloudbilling.googleapis.com": ("Cloud Billing API", False),
    "cloudbuild.googleapis.com": ("Cloud Build API", False),
    "cloudresourcemanager.googleapis.com": ("Cloud Resource Manager API", False),
    "cloudscheduler.googleapis.com": ("Cloud Scheduler API", False),
    "discoveryengine.googleapis.com": ("Discovery Engine API", False),
    "iam.googleapis.com": ("Identity and Access Management (IAM) API", False),
    "logging.googleapis.com": ("Cloud Logging API", True),
    "monitoring.googleapis.com": ("Cloud Monitoring API", True),
    "run.googleapis.com": ("Cloud Run Admin API", False),
    "serviceusage.googleapis.com": ("Service Usage API", True),
    "storage.googleapis.com": ("Cloud Storage API", True),
}
BATCH_ENABLE_MAX = 20


def _now_pb(cloud: Cloud) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(cloud.clock.now())
    return ts


def default_policy() -> policy_pb2.Policy:
    return policy_pb2.Policy(
        version=1, bindings=[policy_pb2.Binding(role="roles/owner", members=[DEFAULT_OWNER])]
    )


@dataclass
class _Project:
    project_id: str
    number: str
    create_time: datetime
    policy: policy_pb2.Policy = field(default_factory=default_policy)
    revision: int = 0
    enabled: set[str] = field(
        default_factory=lambda: {name for name, (_, on) in SERVICE_CATALOG.items() if on}
    )
    accounts: dict[str, iam_admin_v1.ServiceAccount] = field(default_factory=dict)

    def stamp(self) -> None:
        """A new etag for the policy; a stale one is then refused."""
        self.revision += 1
        digest = hashlib.sha256(
            f"{self.project_id}:{self.revision}:".encode() + self.policy.SerializeToString()
        ).digest()
        self.policy.etag = b"BwY" + digest[:6]


def _number_for(project_id: str) -> str:
    # Stable across restarts and machines, 12 digits like real project numbers.
    return str(10**11 + int(hashlib.sha256(project_id.encode()).hexdigest(), 16) % (9 * 10**11))


def _operation(response: Any, metadata: Any) -> operations_pb2.Operation:
    op = operations_pb2.Operation(name=f"operations/acf.p2-{uuid.uuid4()}", done=True)
    packed = any_pb2.Any()
    packed.Pack(type(response).pb(response))
    op.response.CopyFrom(packed)
    meta = any_pb2.Any()
    meta.Pack(type(metadata).pb(metadata))
    op.metadata.CopyFrom(meta)
    return op


class IamService(Service):
    key = "iam"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._projects: dict[str, _Project] = {}

    # cross-service contract ---------------------------------------------------------------
    def project_iam_policy(self, project: str) -> policy_pb2.Policy:
        """The project's policy (id or number); any project id gets the default policy."""
        with self.lock:
            known = self._known(project)
            if known is not None:
                return iam_policy.copy(known.policy)
        return default_policy()

    def allows(self, policy: policy_pb2.Policy, member: str, permission: str) -> bool:
        return roles.allows(policy, member, permission)

    def project_id(self, project: str) -> str:
        """A project number the emulator has handed out, as its id; anything else unchanged."""
        with self.lock:
            known = self._known(project)
            return known.project_id if known else project

    def service_account(self, email: str) -> iam_admin_v1.ServiceAccount | None:
        """The service account with this email in any project (None if there is none)."""
        with self.lock:
            for proj in self._projects.values():
                sa = proj.accounts.get(email.lower())
                if sa is not None:
                    return iam_admin_v1.ServiceAccount(sa)
        return None

    # projects ---------------------------------------------------------------------------------
    def _known(self, project: str) -> _Project | None:
        if project in self._projects:
            return self._projects[project]
        for proj in self._projects.values():
            if proj.number == project:
                return proj
        return None

    def _project(self, ref: str) -> _Project:
        """The project a request names (``P`` or ``projects/P``), made on first sight."""
        ident = ref.removeprefix("projects/")
        if "/" in ident or not ident:
            raise invalid_argument(f"invalid project name {ref!r}: want projects/PROJECT_ID")
        known = self._known(ident)
        if known is not None:
            return known
        if PROJECT_NUMBER_RE.match(ident):
            # A number the emulator never handed out names no project the caller can see.
            raise RpcError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission denied on resource project {ident} (or it may not exist).",
            )
        if not PROJECT_ID_RE.match(ident):
            raise invalid_argument(
                f"invalid project id {ident!r}: 6 to 30 lowercase letters, digits or hyphens, "
                "starting with a letter and not ending with a hyphen"
            )
        proj = _Project(ident, _number_for(ident), self.cloud.clock.now())
        proj.stamp()
        self._projects[ident] = proj
        self.changed()
        return proj

    def _project_pb(self, proj: _Project) -> resourcemanager_v3.Project:
        created = timestamp_pb2.Timestamp()
        created.FromDatetime(proj.create_time)
        return resourcemanager_v3.Project(
            name=f"projects/{proj.number}",
            parent="",
            project_id=proj.project_id,
            state=resourcemanager_v3.Project.State.ACTIVE,
            display_name=proj.project_id,
            create_time=created,
            update_time=created,
            etag=base64.b64encode(proj.number.encode()).decode(),
        )

    def get_project(self, request: resourcemanager_v3.GetProjectRequest, context: Any) -> Any:
        with self.lock:
            return self._project_pb(self._project(request.name))

    def get_iam_policy(self, request: iam_policy_pb2.GetIamPolicyRequest, context: Any) -> Any:
        with self.lock:
            return iam_policy.copy(self._project(request.resource).policy)

    def set_iam_policy(self, request: iam_policy_pb2.SetIamPolicyRequest, context: Any) -> Any:
        policy = request.policy
        paths = set(request.update_mask.paths) if request.HasField("update_mask") else set()
        paths = paths or {"bindings", "etag"}
        unknown = paths - {"bindings", "etag", "audit_configs", "auditConfigs", "version"}
        if unknown:
            raise invalid_argument(f"invalid update_mask paths: {sorted(unknown)}")
        bindings = _normalized_bindings(policy.bindings)
        conditional = iam_policy.is_conditional(bindings)
        if conditional and policy.version not in (0, 3):
            raise invalid_argument(
                "Policies with conditional role bindings must use version 3, "
                f"got version {policy.version}"
            )
        if policy.version not in (0, 1, 3):
            raise invalid_argument(f"invalid policy version {policy.version}: use 1 or 3")
        with self.lock:
            proj = self._project(request.resource)
            iam_policy.check_etag(policy, proj.policy)
            updated = iam_policy.copy(proj.policy)
            del updated.bindings[:]
            updated.bindings.extend(bindings)
            if paths & {"audit_configs", "auditConfigs"}:
                del updated.audit_configs[:]
                updated.audit_configs.extend(policy.audit_configs)
            updated.version = iam_policy.stored_version(bindings)
            proj.policy = updated
            proj.stamp()
            self.changed()
            return iam_policy.copy(proj.policy)

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest, context: Any
    ) -> Any:
        bad = [p for p in request.permissions if not roles.PERMISSION_RE.match(p)]
        if bad:
            raise invalid_argument(f"Permission {bad[0]} is not valid.")
        with self.lock:
            policy = self._project(request.resource).policy
            held = [p for p in request.permissions if roles.allows(policy, DEFAULT_OWNER, p)]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=held)

    # service accounts -------------------------------------------------------------------------
    def _account(self, name: str) -> tuple[_Project, iam_admin_v1.ServiceAccount]:
        m = re.fullmatch(r"projects/([^/]+)/serviceAccounts/([^/]+)", name)
        if not m:
            raise invalid_argument(
                f"invalid service account name {name!r}: "
                "want projects/PROJECT_ID/serviceAccounts/EMAIL_OR_UNIQUE_ID"
            )
        project, key = m.group(1), m.group(2).lower()
        candidates = list(self._projects.values()) if project == "-" else [self._project(project)]
        for proj in candidates:
            for sa in proj.accounts.values():
                if key in (sa.email, sa.unique_id):
                    return proj, sa
        raise not_found(f"Unknown service account: {name}")

    def create_service_account(
        self, request: iam_admin_v1.CreateServiceAccountRequest, context: Any
    ) -> Any:
        account_id = request.account_id
        if not 6 <= len(account_id) <= 30 or not ACCOUNT_ID_RE.match(account_id):
            raise invalid_argument(
                f"Invalid account_id {account_id!r}: it must be 6 to 30 characters and match "
                "[a-z]([-a-z0-9]*[a-z0-9])"
            )
        template = request.service_account
        if len(template.display_name) > 100:
            raise invalid_argument("display_name must be at most 100 characters")
        if len(template.description) > 256:
            raise invalid_argument("description must be at most 256 characters")
        with self.lock:
            proj = self._project(request.name)
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
            self.changed()
            return iam_admin_v1.ServiceAccount(sa)

    def get_service_account(
        self, request: iam_admin_v1.GetServiceAccountRequest, context: Any
    ) -> Any:
        with self.lock:
            return iam_admin_v1.ServiceAccount(self._account(request.name)[1])

    def list_service_accounts(
        self, request: iam_admin_v1.ListServiceAccountsRequest, context: Any
    ) -> Any:
        with self.lock:
            proj = self._project(request.name)
            accounts = sorted(proj.accounts.values(), key=lambda sa: sa.email)
        items, token = rpc.page(
            accounts, request.page_size, request.page_token, default_size=20, max_size=100
        )
        return iam_admin_v1.ListServiceAccountsResponse(accounts=items, next_page_token=token)

    def delete_service_account(
        self, request: iam_admin_v1.DeleteServiceAccountRequest, context: Any
    ) -> Any:
        with self.lock:
            proj, sa = self._account(request.name)
            del proj.accounts[sa.email]
            self.changed()
        return empty_pb2.Empty()

    # service usage ----------------------------------------------------------------------------
    def _service_pb(self, proj: _Project, name: str) -> service_usage_v1.Service:
        title, _ = SERVICE_CATALOG[name]
        state = (
            service_usage_v1.State.ENABLED
            if name in proj.enabled
            else service_usage_v1.State.DISABLED
        )
        return service_usage_v1.Service(
            name=f"projects/{proj.number}/services/{name}",
            parent=f"projects/{proj.number}",
            config=service_usage_v1.ServiceConfig(name=name, title=title),
            state=state,
        )

    def _service_ref(self, name: str) -> tuple[_Project, str]:
        m = re.fullmatch(r"projects/([^/]+)/services/([^/]+)", name)
        if not m:
            raise invalid_argument(
                f"invalid service name {name!r}: want projects/PROJECT/services/SERVICE"
            )
        return self._project(m.group(1)), self._catalogued(m.group(2))

    @staticmethod
    def _catalogued(service: str) -> str:
        if service not in SERVICE_CATALOG:
            raise not_found(f"Not found or permission denied for service(s): {service}.")
        return service

    def list_services(self, request: service_usage_v1.ListServicesRequest, context: Any) -> Any:
        wanted = _state_filter(request.filter)
        with self.lock:
            proj = self._project(request.parent)
            services = [self._service_pb(proj, name) for name in sorted(SERVICE_CATALOG)]
        services = [s for s in services if wanted is None or s.state == wanted]
        items, token = rpc.page(
            services, request.page_size, request.page_token, default_size=50, max_size=200
        )
        return service_usage_v1.ListServicesResponse(services=items, next_page_token=token)

    def get_service(self, request: service_usage_v1.GetServiceRequest, context: Any) -> Any:
        with self.lock:
            proj, name = self._service_ref(request.name)
            return self._service_pb(proj, name)

    def batch_get_services(
        self, request: service_usage_v1.BatchGetServicesRequest, context: Any
    ) -> Any:
        if len(request.names) > 30:
            raise invalid_argument("at most 30 services can be fetched in one batch")
        with self.lock:
            proj = self._project(request.parent)
            out = []
            for name in request.names:
                p, svc = self._service_ref(name)
                if p is not proj:
                    raise invalid_argument(f"{name} is not in {request.parent}")
                out.append(self._service_pb(proj, svc))
        return service_usage_v1.BatchGetServicesResponse(services=out)

    def enable_service(self, request: service_usage_v1.EnableServiceRequest, context: Any) -> Any:
        with self.lock:
            proj, name = self._service_ref(request.name)
            proj.enabled.add(name)
            self.changed()
            svc = self._service_pb(proj, name)
        return _operation(
            service_usage_v1.EnableServiceResponse(service=svc),
            service_usage_v1.OperationMetadata(resource_names=[svc.name]),
        )

    def batch_enable_services(
        self, request: service_usage_v1.BatchEnableServicesRequest, context: Any
    ) -> Any:
        ids = list(request.service_ids)
        if not ids:
            raise invalid_argument("service_ids must name at least one service")
        if len(ids) > BATCH_ENABLE_MAX:
            raise invalid_argument(
                f"at most {BATCH_ENABLE_MAX} services can be enabled in one batch"
            )
        with self.lock:
            proj = self._project(request.parent)
            # All or nothing, as the real batch is when a service is unknown.
            names = [self._catalogued(i) for i in ids]
            proj.enabled.update(names)
            self.changed()
            services = [self._service_pb(proj, n) for n in names]
        return _operation(
            service_usage_v1.BatchEnableServicesResponse(services=services),
            service_usage_v1.OperationMetadata(resource_names=[s.name for s in services]),
        )

    def disable_service(self, request: service_usage_v1.DisableServiceRequest, context: Any) -> Any:
        with self.lock:
            proj, name = self._service_ref(request.name)
            proj.enabled.discard(name)
            self.changed()
            svc = self._service_pb(proj, name)
        return _operation(
            service_usage_v1.DisableServiceResponse(service=svc),
            service_usage_v1.OperationMetadata(resource_names=[svc.name]),
        )

    # wiring -----------------------------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        rm = resourcemanager_v3
        su = service_usage_v1
        ia = iam_admin_v1
        op = operations_pb2.Operation
        return [
            rpc.service(
                "google.cloud.resourcemanager.v3.Projects",
                {
                    "GetProject": Method(self.get_project, rm.GetProjectRequest, rm.Project),
                    **iam_policy.methods(
                        self.get_iam_policy, self.set_iam_policy, self.test_iam_permissions
                    ),
                },
            ),
            rpc.service(
                "google.iam.admin.v1.IAM",
                {
                    "CreateServiceAccount": Method(
                        self.create_service_account,
                        ia.CreateServiceAccountRequest,
                        ia.ServiceAccount,
                    ),
                    "GetServiceAccount": Method(
                        self.get_service_account, ia.GetServiceAccountRequest, ia.ServiceAccount
                    ),
                    "ListServiceAccounts": Method(
                        self.list_service_accounts,
                        ia.ListServiceAccountsRequest,
                        ia.ListServiceAccountsResponse,
                    ),
                    "DeleteServiceAccount": Method(
                        self.delete_service_account,
                        ia.DeleteServiceAccountRequest,
                        empty_pb2.Empty,
                    ),
                },
            ),
            rpc.service(
                "google.api.serviceusage.v1.ServiceUsage",
                {
                    "ListServices": Method(
                        self.list_services, su.ListServicesRequest, su.ListServicesResponse
                    ),
                    "GetService": Method(self.get_service, su.GetServiceRequest, su.Service),
                    "BatchGetServices": Method(
                        self.batch_get_services,
                        su.BatchGetServicesRequest,
                        su.BatchGetServicesResponse,
                    ),
                    "EnableService": Method(self.enable_service, su.EnableServiceRequest, op),
                    "BatchEnableServices": Method(
                        self.batch_enable_services, su.BatchEnableServicesRequest, op
                    ),
                    "DisableService": Method(self.disable_service, su.DisableServiceRequest, op),
                },
            ),
        ]

    # persistence ------------------------------------------------------------------------------
    def dump(self) -> Any:
        return {
            "projects": [
                {
                    "project_id": p.project_id,
                    "number": p.number,
                    "create_time": p.create_time.isoformat(),
                    "policy": to_jsonable(p.policy),
                    "revision": p.revision,
                    "enabled": sorted(p.enabled),
                    "accounts": [to_jsonable(sa) for sa in p.accounts.values()],
                }
                for p in self._projects.values()
            ]
        }

    def load(self, data: Any) -> None:
        for rec in (data or {}).get("projects", []):
            proj = _Project(
                rec["project_id"],
                rec["number"],
                datetime.fromisoformat(rec["create_time"]),
                policy=from_jsonable(policy_pb2.Policy, rec["policy"]),
                revision=rec["revision"],
                enabled=set(rec["enabled"]),
            )
            for sa_data in rec["accounts"]:
                sa = from_jsonable(iam_admin_v1.ServiceAccount, sa_data)
                proj.accounts[sa.email] = sa
            self._projects[proj.project_id] = proj


def _state_filter(text: str) -> Any:
    """``state:ENABLED`` / ``state:DISABLED`` / empty: the filters Service Usage documents."""
    text = text.strip()
    if not text:
        return None
    m = re.fullmatch(r"state\s*:\s*(ENABLED|DISABLED)", text)
    if not m:
        raise invalid_argument(
            f"unsupported filter {text!r}: only state:ENABLED and state:DISABLED are supported"
        )
    return getattr(service_usage_v1.State, m.group(1))


def _check_member(member: str) -> None:
    if member in ("allUsers", "allAuthenticatedUsers"):
        return
    kind, sep, rest = member.partition(":")
    if kind == "deleted":
        kind, sep, rest = rest.partition(":")
        rest = rest.split("?uid=")[0]
    if not sep or kind not in MEMBER_KINDS or not rest:
        raise invalid_argument(f"Invalid member: {member!r}")
    if kind in ("user", "serviceAccount", "group") and not EMAIL_RE.match(rest):
        raise invalid_argument(f"Invalid member: {member!r} (not an email address)")


def _normalized_bindings(
    bindings: Any,
) -> list[policy_pb2.Binding]:
    """Validate and merge bindings the way IAM stores them: one per (role, condition),
    members de-duplicated and sorted, empty bindings dropped."""
    merged: dict[tuple[str, bytes], policy_pb2.Binding] = {}
    for b in bindings:
        if not b.role:
            raise invalid_argument("a binding has no role")
        if not roles.is_known_role(b.role):
            raise invalid_argument(f"Role {b.role} is not supported for this resource.")
        for m in b.members:
            _check_member(m)
        key = (b.role, b.condition.SerializeToString() if b.HasField("condition") else b"")
        if key not in merged:
            out = policy_pb2.Binding(role=b.role)
            if b.HasField("condition"):
                out.condition.CopyFrom(b.condition)
            merged[key] = out
        merged[key].members.extend(b.members)
    result = []
    for b in merged.values():
        members = sorted(set(b.members))
        if members:
            del b.members[:]
            b.members.extend(members)
            result.append(b)
    return result
