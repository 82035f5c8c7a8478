"""Projects: the record the three IAM surfaces share, and Resource Manager v3 on top of it.

``google.cloud.resourcemanager.v3.Projects``: GetProject, GetIamPolicy, SetIamPolicy,
TestIamPermissions. Any well-formed project id exists: it appears, with the default policy
below and the APIs a new project has enabled, the first time anything names it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.cloud import iam_admin_v1, resourcemanager_v3
from google.iam.v1 import policy_pb2
from google.protobuf import timestamp_pb2

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Service
from govctl.emulator.iam import roles
from govctl.emulator.iam.policy import IamPolicies
from govctl.emulator.rpc import invalid_argument
from govctl.emulator.state import from_jsonable, to_jsonable

# The principal every RPC of the emulator is taken to come from (clients use anonymous
# credentials); it owns every project, as the creator of a real project does.
DEFAULT_OWNER = "user:emulator@example.com"

PROJECT_ID_RE = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
PROJECT_NUMBER_RE = re.compile(r"^[0-9]{6,20}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MEMBER_KINDS = ("user", "serviceAccount", "group", "domain", "principal", "principalSet")


SCHEDULER_AGENT_ROLE = "roles/cloudscheduler.serviceAgent"


def scheduler_agent(number: str) -> str:
    """Cloud Scheduler's service agent in the project with this number (GCP-FACTS.md)."""
    return f"serviceAccount:service-{number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"


def default_policy(number: str | None = None) -> policy_pb2.Policy:
    """A new project's policy: its creator owns it, and (given the project number) Cloud
    Scheduler's service agent holds its role, as Google grants it when the API is first used."""
    bindings = [policy_pb2.Binding(role="roles/owner", members=[DEFAULT_OWNER])]
    if number is not None:
        bindings.append(
            policy_pb2.Binding(role=SCHEDULER_AGENT_ROLE, members=[scheduler_agent(number)])
        )
    return policy_pb2.Policy(version=1, bindings=bindings)


@dataclass
class Project:
    project_id: str
    number: str
    create_time: datetime
    policy: policy_pb2.Policy = field(default_factory=default_policy)
    revision: int = 0
    enabled: set[str] = field(default_factory=set)  # Service Usage: enabled API names
    accounts: dict[str, iam_admin_v1.ServiceAccount] = field(default_factory=dict)  # by email

    def stamp(self) -> None:
        """A new etag for the policy; a stale one is then refused."""
        self.revision += 1
        digest = hashlib.sha256(
            f"{self.project_id}:{self.revision}:".encode() + self.policy.SerializeToString()
        ).digest()
        self.policy.etag = b"BwY" + digest[:6]

    def dump(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "number": self.number,
            "create_time": self.create_time.isoformat(),
            "policy": to_jsonable(self.policy),
            "revision": self.revision,
            "enabled": sorted(self.enabled),
            "accounts": [to_jsonable(sa) for sa in self.accounts.values()],
        }

    @classmethod
    def load(cls, rec: dict[str, Any]) -> Project:
        proj = cls(
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
        return proj


def number_for(project_id: str) -> str:
    # Stable across restarts and machines, 12 digits like real project numbers.
    return str(10**11 + int(hashlib.sha256(project_id.encode()).hexdigest(), 16) % (9 * 10**11))


class Projects:
    """Every project the emulator has seen, by id. Callers hold the IAM service's lock."""

    def __init__(self, service: Service, enabled_in_new_projects: Iterable[str]) -> None:
        self._service = service
        self._enabled_in_new = frozenset(enabled_in_new_projects)
        self.by_id: dict[str, Project] = {}

    def known(self, project: str) -> Project | None:
        """The project with this id or number, if the emulator has seen it."""
        if project in self.by_id:
            return self.by_id[project]
        for proj in self.by_id.values():
            if proj.number == project:
                return proj
        return None

    def get(self, ref: str) -> Project:
        """The project a request names (``P`` or ``projects/P``), made on first sight."""
        ident = ref.removeprefix("projects/")
        if "/" in ident or not ident:
            raise invalid_argument(f"invalid project name {ref!r}: want projects/PROJECT_ID")
        known = self.known(ident)
        if known is not None:
            return known
        if PROJECT_NUMBER_RE.fullmatch(ident):
            # A number the emulator never handed out names no project the caller can see.
            raise rpc.permission_denied(
                f"Permission denied on resource project {ident} (or it may not exist)."
            )
        if not PROJECT_ID_RE.fullmatch(ident):
            raise invalid_argument(
                f"invalid project id {ident!r}: 6 to 30 lowercase letters, digits or hyphens, "
                "starting with a letter and not ending with a hyphen"
            )
        number = number_for(ident)
        proj = Project(
            ident,
            number,
            self._service.cloud.clock.now(),
            policy=default_policy(number),
            enabled=set(self._enabled_in_new),
        )
        proj.stamp()
        self.by_id[ident] = proj
        self._service.changed()
        return proj


class ProjectPolicies(IamPolicies):
    """Project IAM policies, kept in each project's record. Resource Manager honours
    ``update_mask`` and does not apply ``requested_policy_version``; it merges bindings
    (see :func:`_normalized_bindings`); TestIamPermissions answers from the roles the
    emulator's caller holds (:mod:`.roles`)."""

    honours_update_mask = True
    applies_requested_version = False

    def __init__(self, service: Service, projects: Projects) -> None:
        super().__init__(service)
        self.projects = projects

    def check_exists(self, resource: str) -> None:
        self.projects.get(resource)

    def current(self, resource: str) -> policy_pb2.Policy:
        return self.projects.get(resource).policy

    def save(self, resource: str, policy: policy_pb2.Policy) -> None:
        proj = self.projects.get(resource)
        proj.policy = policy
        proj.stamp()

    def bindings(self, bindings: Sequence[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
        return _normalized_bindings(bindings)

    def check_permissions(self, permissions: Sequence[str]) -> None:
        check_permissions(permissions)

    def granted(self, policy: policy_pb2.Policy, permission: str) -> bool:
        return roles.allows(policy, DEFAULT_OWNER, permission)


def check_permissions(permissions: Sequence[str]) -> None:
    bad = [p for p in permissions if not roles.PERMISSION_RE.fullmatch(p)]
    if bad:
        raise invalid_argument(f"Permission {bad[0]} is not valid.")


class ProjectsApi:
    """``google.cloud.resourcemanager.v3.Projects``: projects and their IAM policies."""

    def __init__(self, service: Service, projects: Projects) -> None:
        self.svc = service
        self.projects = projects
        self.policies = ProjectPolicies(service, projects)

    def rpcs(self) -> Bound:
        return gapic_api("google.cloud.resourcemanager_v3.services.projects").bind(
            {"GetProject": self.get_project, **self.policies.handlers()}
        )

    def get_project(self, request: resourcemanager_v3.GetProjectRequest, context: Any) -> Any:
        with self.svc.lock:
            return _project_pb(self.projects.get(request.name))


def _project_pb(proj: Project) -> resourcemanager_v3.Project:
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


def check_member(member: str) -> None:
    """INVALID_ARGUMENT for a member IAM would refuse (`user:EMAIL`, `serviceAccount:EMAIL`, …)."""
    if member in ("allUsers", "allAuthenticatedUsers"):
        return
    kind, sep, rest = member.partition(":")
    if kind == "deleted":
        kind, sep, rest = rest.partition(":")
        rest = rest.split("?uid=")[0]
    if not sep or kind not in MEMBER_KINDS or not rest:
        raise invalid_argument(f"Invalid member: {member!r}")
    if kind in ("user", "serviceAccount", "group") and not EMAIL_RE.fullmatch(rest):
        raise invalid_argument(f"Invalid member: {member!r} (not an email address)")


def _normalized_bindings(bindings: Iterable[policy_pb2.Binding]) -> list[policy_pb2.Binding]:
    """Validate and merge bindings the way IAM stores them: one per (role, condition),
    members de-duplicated and sorted, empty bindings dropped."""
    merged: dict[tuple[str, bytes], policy_pb2.Binding] = {}
    for b in bindings:
        if not b.role:
            raise invalid_argument("a binding has no role")
        if not roles.is_known_role(b.role):
            raise invalid_argument(f"Role {b.role} is not supported for this resource.")
        for m in b.members:
            check_member(m)
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
