"""Secret Manager as govctl sees it: secrets, their versions, and who may read them.

A secret's value goes in (``add_version``) and comes out in one place only: ``access``, for
`govctl local run`, which hands it to the job it starts in that process's environment. No
command prints, logs or renders a value. IAM writes are read-modify-write with the etag read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from govctl.errors import CloudError, NotFound
from govctl.gcp import clients
from govctl.gcp.errors import translate

ACCESSOR = "roles/secretmanager.secretAccessor"
# Predefined roles holding secretmanager.versions.access (Google's role reference).
ACCESS_ROLES = (ACCESSOR, "roles/secretmanager.admin", "roles/owner")
DENIED_FIX = (
    "you need roles/secretmanager.admin on the project (or on the secret) to create secrets, "
    "add versions and grant access"
)


@dataclass(frozen=True)
class Version:
    name: str  # projects/P/secrets/S/versions/N
    number: str
    state: str  # ENABLED / DISABLED / DESTROYED
    create_time: datetime | None


def secret_path(project: str, secret_id: str) -> str:
    return f"projects/{project}/secrets/{secret_id}"


def _version(pb: Any) -> Version:
    from google.cloud import secretmanager_v1 as sm

    return Version(
        name=pb.name,
        number=sm.SecretManagerServiceClient.parse_secret_version_path(pb.name)["secret_version"],
        state=sm.SecretVersion.State(pb.state).name,
        create_time=pb.create_time if "create_time" in pb else None,
    )


def exists(project: str, secret_id: str) -> bool:
    name = secret_path(project, secret_id)
    try:
        with translate(f"get secret {name}", denied=DENIED_FIX):
            clients.secret_manager().get_secret(name=name)
    except NotFound:
        return False
    return True


def ids(project: str, limit: int = 100) -> list[str]:
    """The ids of the project's secrets (at most ``limit``, in the service's order)."""
    found: list[str] = []
    with translate(f"list the secrets of projects/{project}", denied=DENIED_FIX):
        for secret in clients.secret_manager().list_secrets(parent=f"projects/{project}"):
            found.append(secret.name.rpartition("/")[2])
            if len(found) >= limit:
                break
    return found


def create(project: str, secret_id: str, labels: dict[str, str] | None = None) -> None:
    """A secret with automatic replication (Google chooses where the payload is stored)."""
    from google.cloud import secretmanager_v1 as sm

    secret = sm.Secret(replication=sm.Replication(automatic=sm.Replication.Automatic()))
    secret.labels.update(labels or {})
    with translate(f"create secret {secret_path(project, secret_id)}", denied=DENIED_FIX):
        clients.secret_manager().create_secret(
            parent=f"projects/{project}", secret_id=secret_id, secret=secret
        )


def add_version(project: str, secret_id: str, value: bytes) -> Version:
    """A new enabled version holding ``value``, sent with its CRC32C so a corrupted
    payload is refused by the service rather than stored."""
    import google_crc32c
    from google.cloud import secretmanager_v1 as sm

    payload = sm.SecretPayload(data=value, data_crc32c=int(google_crc32c.value(value)))
    name = secret_path(project, secret_id)
    with translate(f"add a version to secret {name}", denied=DENIED_FIX):
        return _version(clients.secret_manager().add_secret_version(parent=name, payload=payload))


def access(project: str, secret_id: str, version: str) -> bytes:
    """The value of ``secret_id`` at ``version`` (a number or ``latest``), checked against
    the CRC32C Secret Manager sends with it. Only for a job's environment: never print it."""
    import google_crc32c

    name = f"{secret_path(project, secret_id)}/versions/{version}"
    fix = "store it with `govctl secrets set NAME`, or fix the reference in [job] secrets"
    denied = "reading a value needs roles/secretmanager.secretAccessor on the secret or project"
    with translate(f"read secret version {name}", not_found=fix, denied=denied):
        response = clients.secret_manager().access_secret_version(name=name)
    payload = response.payload
    data = bytes(payload.data)
    if "data_crc32c" in payload and payload.data_crc32c != google_crc32c.value(data):
        raise CloudError(f"read secret version {name}: the value arrived corrupted (CRC32C)",
                         fix="retry")  # fmt: skip
    return data


def versions(project: str, secret_id: str) -> list[Version] | None:
    """Every version, newest first; None when the secret does not exist."""
    name = secret_path(project, secret_id)
    try:
        with translate(f"list the versions of secret {name}", denied=DENIED_FIX):
            return [_version(v) for v in clients.secret_manager().list_secret_versions(parent=name)]
    except NotFound:
        return None


def resolve(found: list[Version], version: str) -> Version | None:
    """The version a reference names: a number, or ``latest`` (the newest created)."""
    if version == "latest":
        return found[0] if found else None
    return next((v for v in found if v.number == version), None)


# IAM --------------------------------------------------------------------------------------


def _members(policy: Any) -> set[str]:
    """Members granted a role that reads secret values (conditional grants not counted)."""
    return {
        m.lower()
        for b in policy.bindings
        if b.role in ACCESS_ROLES and not b.HasField("condition")
        for m in b.members
    }


def can_access(project: str, secret_id: str, member: str) -> bool:
    """Whether ``member`` may read the secret's values: a grant on the secret or the project."""
    name = secret_path(project, secret_id)
    with translate(f"get the IAM policy of secret {name}", denied=DENIED_FIX):
        policy = clients.secret_manager().get_iam_policy(request={"resource": name})
    if member.lower() in _members(policy):
        return True
    with translate(f"get the IAM policy of project {project}"):
        project_policy = clients.projects().get_iam_policy(
            request={"resource": f"projects/{project}"}
        )
    return member.lower() in _members(project_policy)


def grant_access(project: str, secret_id: str, member: str) -> bool:
    """Grant ``member`` roles/secretmanager.secretAccessor on the secret; False if it had it.

    Read-modify-write with the policy's etag: a change made in between is refused (ABORTED)
    and reported, never overwritten.
    """
    client = clients.secret_manager()
    name = secret_path(project, secret_id)
    what = f"grant {ACCESSOR} to {member} on secret {name}"
    with translate(what, denied=DENIED_FIX):
        policy = client.get_iam_policy(request={"resource": name})
    for binding in policy.bindings:
        if binding.role == ACCESSOR and not binding.HasField("condition"):
            if member in binding.members:
                return False
            binding.members.append(member)
            break
    else:
        policy.bindings.add(role=ACCESSOR, members=[member])
    with translate(what, denied=DENIED_FIX):
        client.set_iam_policy(request={"resource": name, "policy": policy})
    return True


def granted_on_secret(project: str, secret_id: str, member: str) -> bool:
    """Whether the secret's own policy grants ``member`` (or it, deleted since) read access
    (:data:`ACCESSOR`, the role setup and `secrets set` grant); project grants not counted."""
    from govctl.gcp.iam import is_member

    name = secret_path(project, secret_id)
    with translate(f"get the IAM policy of secret {name}", denied=DENIED_FIX):
        policy = clients.secret_manager().get_iam_policy(request={"resource": name})
    return any(
        is_member(m, member)
        for b in policy.bindings
        if b.role == ACCESSOR and not b.HasField("condition")
        for m in b.members
    )


def revoke_access(project: str, secret_id: str, member: str) -> bool:
    """Remove ``member``'s :data:`ACCESSOR` grant on the secret, read-modify-write with the
    etag just read (a change in between is ABORTED, never overwritten); False when it had
    none."""
    from govctl.gcp.iam import remove

    client = clients.secret_manager()
    name = secret_path(project, secret_id)
    with translate(f"remove {ACCESSOR} from {member} on secret {name}", denied=DENIED_FIX):
        policy = client.get_iam_policy(request={"resource": name})
        if not remove(policy, ACCESSOR, member):
            return False
        client.set_iam_policy(request={"resource": name, "policy": policy})
    return True


def delete(project: str, secret_id: str) -> None:
    """Delete the secret with every version and value (`gcloud secrets delete`); NotFound when
    it is gone already."""
    name = secret_path(project, secret_id)
    with translate(f"delete secret {name}", denied=DENIED_FIX):
        clients.secret_manager().delete_secret(name=name)
