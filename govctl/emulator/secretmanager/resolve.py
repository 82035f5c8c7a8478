"""How Cloud Run reads a secret: the public contract ``resolve`` (see govctl/emulator/cloud.py).

It applies the checks Cloud Run's service agent meets: the version exists, is enabled, and
the job's service account holds ``secretmanager.versions.access`` on the secret or its project.
"""

from __future__ import annotations

from google.iam.v1 import policy_pb2

from govctl.emulator.iam import roles
from govctl.emulator.rpc import RpcError
from govctl.emulator.secretmanager.resources import SECRET, SecretResources, State

ACCESS = "secretmanager.versions.access"
API = "secretmanager.googleapis.com"


class SecretUnavailable(LookupError):
    """Why a secret reference cannot be resolved, in Cloud Run's words."""


class Resolution(SecretResources):
    def resolve(self, project: str, secret: str, version: str, member: str) -> str:
        """The value Cloud Run puts in a task's environment for a ``secret_key_ref``.

        ``secret`` is a secret id of ``project`` or ``projects/P/secrets/S``; ``version`` a
        number or ``latest`` (empty means latest). Raises :class:`SecretUnavailable` with the
        message Cloud Run shows when the secret, the version or the access is missing.
        """
        name = secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
        version = version or "latest"
        shown = f"{name}/versions/{version}"
        if not SECRET.fullmatch(name):
            raise SecretUnavailable(f"Secret {shown} is not a valid secret reference.")
        try:  # Cloud Run reads the secret through the Secret Manager API of its project
            self.cloud.service("iam").check_api(API, name.split("/")[1])
        except RpcError as err:
            raise SecretUnavailable(err.message) from None
        with self.lock:
            stored = self.secrets.get(name)
            if stored is None:
                raise SecretUnavailable(f"Secret {shown} was not found")
            if not self._can_access(name, member):
                account = member.removeprefix("serviceAccount:")
                raise SecretUnavailable(
                    f"Permission denied on secret: {shown} for Revision service account "
                    f"{account}. The service account used must be granted the 'Secret Manager "
                    "Secret Accessor' role (roles/secretmanager.secretAccessor) at the secret, "
                    "project or higher level."
                )
            pb = self.find_version(name, version)
            if pb is None:
                raise SecretUnavailable(f"Secret {shown} was not found")
            if pb.state != State.ENABLED:
                raise SecretUnavailable(
                    f"Secret {shown} is in {State(pb.state).name} state and cannot be accessed."
                )
            return self.payloads[pb.name].decode("utf-8", errors="replace")

    def _can_access(self, secret: str, member: str) -> bool:
        if roles.allows(self.policies.by_resource.get(secret, policy_pb2.Policy()), member, ACCESS):
            return True
        project = secret.split("/")[1]
        iam = self.cloud.service("iam")
        return bool(iam.allows(iam.project_iam_policy(project), member, ACCESS))
