"""IAM as govctl records: policies of projects and jobs, what a caller may do, service accounts.

Reads (``project_policy``, ``job_policy``, ``test_*``, ``service_account``) serve ``govctl
doctor``; ``grant_on_project`` is IAM's read-modify-write with the etag (a concurrent change
is ABORTED and reported, never overwritten); ``create_service_account`` serves ``govctl
setup``. Granting on a job is :func:`govctl.gcp.jobs.add_member`, on a bucket
:func:`govctl.gcp.buckets.add_member`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from govctl.errors import NotFound
from govctl.gcp import clients, jobs
from govctl.gcp.errors import translate

# Under the emulator every call comes from this principal (docs/emulator/iam.md).
EMULATOR_CALLER = "user:emulator@example.com"
# User credentials often carry no email; fix commands then show this placeholder.
UNKNOWN_USER = "user:YOUR_EMAIL"

# Roles that grant a permission doctor asks about, beyond the basic roles (GCP-FACTS.md and
# Google's role reference; the role lists are the subset govctl meets).
GRANTING: dict[str, frozenset[str]] = {
    "run.jobs.run": frozenset(
        {
            "roles/run.invoker",
            "roles/run.jobsExecutor",
            "roles/run.jobsExecutorWithOverrides",
            "roles/run.developer",
            "roles/run.admin",
            "roles/owner",
            "roles/editor",
        }
    ),
    "run.jobs.runWithOverrides": frozenset(
        {
            "roles/run.jobsExecutorWithOverrides",
            "roles/run.developer",
            "roles/run.admin",
            "roles/owner",
            "roles/editor",
        }
    ),
    # What a Cloud Build service account needs (services/build_account.py).
    "logging.logEntries.create": frozenset(
        {"roles/logging.logWriter", "roles/logging.admin", "roles/owner", "roles/editor"}
    ),
    "artifactregistry.repositories.uploadArtifacts": frozenset(
        {
            "roles/artifactregistry.writer",
            "roles/artifactregistry.repoAdmin",
            "roles/artifactregistry.admin",
            "roles/owner",
            "roles/editor",
        }
    ),
    "storage.objects.get": frozenset(
        {
            "roles/storage.objectViewer",
            "roles/storage.objectUser",
            "roles/storage.objectAdmin",
            "roles/storage.admin",
            "roles/owner",
            "roles/editor",
        }
    ),
    "storage.objects.create": frozenset(
        {
            "roles/storage.objectCreator",
            "roles/storage.objectUser",
            "roles/storage.objectAdmin",
            "roles/storage.admin",
            "roles/owner",
            "roles/editor",
        }
    ),
}


@dataclass(frozen=True)
class Policy:
    """Unconditional bindings (role -> members); conditional ones are kept apart because
    whether they apply cannot be known without evaluating their condition."""

    bindings: dict[str, frozenset[str]] = field(default_factory=dict)
    conditional: dict[str, frozenset[str]] = field(default_factory=dict)

    def holds(self, member: str, role: str) -> bool:
        return _norm(member) in {_norm(m) for m in self.bindings.get(role, frozenset())}

    def names(self, member: str, role: str) -> bool:
        """Whether an unconditional binding of ``role`` lists ``member``, or that member
        deleted since (see :func:`is_member`)."""
        return any(is_member(m, member) for m in self.bindings.get(role, frozenset()))

    def roles_of(self, member: str) -> set[str]:
        return {r for r in self.bindings if self.holds(member, r)}

    def grants(self, member: str, permission: str) -> bool:
        return bool(self.roles_of(member) & GRANTING.get(permission, frozenset()))


@dataclass(frozen=True)
class ServiceAccount:
    email: str
    name: str
    disabled: bool
    display_name: str = ""


def _norm(member: str) -> str:
    kind, sep, rest = member.partition(":")
    return f"{kind}:{rest.lower()}" if sep else member


def is_member(listed: str, member: str) -> bool:
    """Whether ``listed`` (a member as a policy lists it) is ``member``. A service account
    deleted since it was granted is listed as ``deleted:serviceAccount:EMAIL?uid=ID``
    (googleapis ``google/iam/v1/policy.proto``, ``Binding.members``): that is it too, so a
    grant can be removed after its account is gone."""
    if _norm(listed) == _norm(member):
        return True
    gone, sep, rest = listed.partition("deleted:")
    return bool(sep) and not gone and _norm(rest.split("?uid=", 1)[0]) == _norm(member)


def policy_of(pb: Any) -> Policy:
    """A ``google.iam.v1.Policy`` (of any resource) as govctl's record."""
    return _policy(pb)


def _policy(pb: Any) -> Policy:
    plain: dict[str, set[str]] = {}
    conditional: dict[str, set[str]] = {}
    for b in pb.bindings:
        target = conditional if b.HasField("condition") and b.condition.expression else plain
        target.setdefault(b.role, set()).update(b.members)
    return Policy(
        {r: frozenset(m) for r, m in plain.items()},
        {r: frozenset(m) for r, m in conditional.items()},
    )


def caller() -> str:
    """Who the credentials are, as an IAM member where it can be known without a call."""
    if clients.emulator_host():
        return EMULATOR_CALLER
    import google.auth

    with translate("find Google credentials"):
        creds, _ = google.auth.default()
    email = getattr(creds, "service_account_email", None)
    if email and "@" in email:
        return f"serviceAccount:{email}"
    account = getattr(creds, "account", None)
    return f"user:{account}" if account else UNKNOWN_USER


def project_policy(project: str) -> Policy:
    with translate(f"read the IAM policy of project {project}"):
        return _policy(clients.projects().get_iam_policy(resource=f"projects/{project}"))


def job_policy(job_path: str) -> Policy:
    with translate(
        f"read the IAM policy of job {jobs.job_id(job_path)}",
        not_found="deploy it first: govctl deploy",
    ):
        return _policy(clients.jobs().get_iam_policy(request={"resource": job_path}))


def test_project(project: str, permissions: Iterable[str]) -> set[str]:
    """Which of ``permissions`` the caller holds on the project."""
    with translate(f"test permissions on project {project}"):
        answer = clients.projects().test_iam_permissions(
            resource=f"projects/{project}", permissions=list(permissions)
        )
    return set(answer.permissions)


def test_job(job_path: str, permissions: Iterable[str]) -> set[str]:
    with translate(f"test permissions on job {jobs.job_id(job_path)}"):
        answer = clients.jobs().test_iam_permissions(
            request={"resource": job_path, "permissions": list(permissions)}
        )
    return set(answer.permissions)


def test_service_account(project: str, email: str, permissions: Iterable[str]) -> set[str]:
    from google.iam.v1 import iam_policy_pb2

    with translate(f"test permissions on service account {email}"):
        answer = clients.iam().test_iam_permissions(
            request=iam_policy_pb2.TestIamPermissionsRequest(
                resource=f"projects/{project}/serviceAccounts/{email}",
                permissions=list(permissions),
            )
        )
    return set(answer.permissions)


def service_account(project: str, email: str) -> ServiceAccount | None:
    """The service account, or None when it does not exist."""
    try:
        with translate(f"get service account {email}"):
            sa = clients.iam().get_service_account(
                name=f"projects/{project}/serviceAccounts/{email}"
            )
    except NotFound:
        return None
    return ServiceAccount(
        email=sa.email, name=sa.name, disabled=bool(sa.disabled), display_name=sa.display_name
    )


def _add(policy: Any, role: str, member: str) -> bool:
    for b in policy.bindings:
        if b.role == role and not (b.HasField("condition") and b.condition.expression):
            if member in b.members:
                return False
            b.members.append(member)
            return True
    policy.bindings.add(role=role, members=[member])
    return True


def grant_on_project(project: str, role: str, member: str) -> bool:
    """Add ``member`` to ``role`` on the project; False when it already held it."""
    rm = clients.projects()
    with translate(f"grant {role} to {member} on project {project}"):
        policy = rm.get_iam_policy(resource=f"projects/{project}")
        if not _add(policy, role, member):
            return False
        rm.set_iam_policy(request={"resource": f"projects/{project}", "policy": policy})
    return True


def remove(policy: Any, role: str, member: str) -> bool:
    """Take ``member`` (or it, deleted since) out of the unconditional binding of ``role`` in
    a protobuf ``google.iam.v1.Policy``; a binding left with no member is dropped (Resource
    Manager drops those itself, terraform-provider-google #4439). False when not there."""
    removed = False
    for b in list(policy.bindings):
        if b.role != role or (b.HasField("condition") and b.condition.expression):
            continue
        kept = [m for m in b.members if not is_member(m, member)]
        if len(kept) == len(b.members):
            continue
        removed = True
        del b.members[:]
        b.members.extend(kept)
        if not kept:
            policy.bindings.remove(b)
    return removed


def revoke_on_project(project: str, role: str, member: str) -> bool:
    """Remove ``member``'s ``role`` on the project, read-modify-write with the etag just read
    (a change made in between is ABORTED, never overwritten); False when it had none."""
    rm = clients.projects()
    resource = f"projects/{project}"
    with translate(f"remove {role} from {member} on project {project}"):
        policy = rm.get_iam_policy(resource=resource)
        if not remove(policy, role, member):
            return False
        rm.set_iam_policy(request={"resource": resource, "policy": policy})
    return True


def delete_service_account(project: str, email: str) -> None:
    """Delete the service account (`gcloud iam service-accounts delete`). IAM keeps it 30 days
    before removing it for good (projects.serviceAccounts/delete); NotFound when it is gone."""
    with translate(
        f"delete service account {email}",
        denied="deleting service accounts needs roles/iam.serviceAccountAdmin on the project",
    ):
        clients.iam().delete_service_account(name=f"projects/{project}/serviceAccounts/{email}")


def create_service_account(
    project: str, account_id: str, display_name: str = "", description: str = ""
) -> ServiceAccount:
    """Create ``account_id@project.iam.gserviceaccount.com``; an account made meanwhile (by
    someone else, or a retried call) is returned as it is."""
    from google.api_core import exceptions
    from google.cloud import iam_admin_v1

    email = f"{account_id}@{project}.iam.gserviceaccount.com"
    with translate(
        f"create service account {email}",
        denied="creating service accounts needs roles/iam.serviceAccountAdmin on the project",
    ):
        try:
            sa = clients.iam().create_service_account(
                request=iam_admin_v1.CreateServiceAccountRequest(
                    name=f"projects/{project}",
                    account_id=account_id,
                    service_account=iam_admin_v1.ServiceAccount(
                        display_name=display_name, description=description
                    ),
                )
            )
        except exceptions.AlreadyExists:
            found = service_account(project, email)
            if found is None:  # deleted again in between: say so rather than loop
                raise
            return found
    return ServiceAccount(
        email=sa.email, name=sa.name, disabled=bool(sa.disabled), display_name=sa.display_name
    )
