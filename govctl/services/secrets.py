"""What `govctl secrets` means: store a value in Secret Manager for one of the job's variables,
and say, for each ``[job] secrets`` entry, whether the job will be able to read it.

Values go one way: in through :func:`set_value`, out only to the job's tasks (Cloud Run
reads them). Nothing here returns, logs or renders a value. ``status`` is also what
``govctl setup`` and ``govctl doctor`` call to check that the job's service account can read
each referenced secret and that the version it names is enabled; ``ensure_access`` is their
fix for a missing grant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from govctl import validate
from govctl.config import Config
from govctl.errors import UsageError

MAX_VALUE = 64 * 1024  # Secret Manager's payload limit
MANAGED_BY = {"managed-by": "govctl"}


@dataclass(frozen=True)
class SecretStatus:
    """One ``[job] secrets`` entry as the job would meet it."""

    name: str  # the environment variable
    secret: str  # the secret id
    version: str  # what the reference names: "latest" or a number
    exists: bool
    latest_enabled: str | None  # the newest enabled version's number
    state: str | None  # state of the version the reference names (None: there is none)
    access: bool | None  # whether the job's service account can read it (None: unknown)
    problem: str | None = None
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class SetResult:
    name: str
    secret: str
    version: str  # the number of the version just added
    created: bool  # the secret was created
    granted: bool  # the job's service account was granted access now
    service_account: str
    configured: bool  # NAME is already in [job] secrets
    account_missing: bool = False  # no such service account yet: nothing could be granted


def secret_ids(cfg: Config) -> list[str]:
    """The ids of the project's secrets (for completing ``--secret``)."""
    from govctl.gcp import secrets

    return secrets.ids(cfg.require_project())


def secret_for(cfg: Config, name: str) -> tuple[str, str]:
    """(secret id, version) of ``NAME``: its ``[job] secrets`` entry, else ``github-token``
    for ``GITHUB_TOKEN`` at ``latest``."""
    if name in cfg.job.secrets:
        return validate.secret_ref(cfg.job.secrets[name], f"[job] secrets entry {name}")
    return validate.secret_id_for(name), "latest"


def check_value(value: bytes) -> bytes:
    """The value as stored: one trailing newline (from ``echo`` or a file) removed."""
    if value.endswith(b"\r\n"):
        value = value[:-2]
    elif value.endswith(b"\n"):
        value = value[:-1]
    if not value:
        raise UsageError("the secret's value is empty", fix="pipe the value on stdin, e.g. "
                         "`gh auth token | govctl secrets set GITHUB_TOKEN`")  # fmt: skip
    if len(value) > MAX_VALUE:
        raise UsageError(
            f"the secret's value is {len(value):,} bytes: expected at most {MAX_VALUE:,} bytes "
            "(Secret Manager's limit)"
        )
    return value


def set_value(cfg: Config, name: str, value: bytes, secret_id: str | None = None) -> SetResult:
    """Store ``value`` as a new version of NAME's secret (creating the secret), and let the
    job's service account read it."""
    from govctl.gcp import iam, secrets

    project = cfg.require_project()
    secret = secret_id or secret_for(cfg, name)[0]
    created = False
    if not secrets.exists(project, secret):
        secrets.create(project, secret, labels=MANAGED_BY)
        created = True
    version = secrets.add_version(project, secret, value)
    account = cfg.job.service_account
    # IAM refuses a grant to an account that does not exist; the value is kept all the
    # same, and `govctl setup` grants access once it has created the account.
    missing = iam.service_account(project, account) is None
    granted = (
        False if missing else secrets.grant_access(project, secret, f"serviceAccount:{account}")
    )
    return SetResult(
        name=name,
        secret=secret,
        version=version.number,
        created=created,
        granted=granted,
        service_account=account,
        configured=name in cfg.job.secrets,
        account_missing=missing,
    )


def status(cfg: Config) -> list[SecretStatus]:
    """Each ``[job] secrets`` entry: the secret, its newest enabled version, whether the
    job's service account can read it, and what to do when the job could not."""
    from govctl.gcp import secrets

    project = cfg.require_project()
    member = f"serviceAccount:{cfg.job.service_account}"
    found = []
    for name, ref in sorted(cfg.job.secrets.items()):
        secret, version = validate.secret_ref(ref, f"[job] secrets entry {name}")
        versions = secrets.versions(project, secret)
        set_fix = f"run `govctl secrets set {name}`"
        if versions is None:
            found.append(SecretStatus(
                name, secret, version, False, None, None, None,
                f"secret {secret} does not exist in project {project}", set_fix,
            ))  # fmt: skip
            continue
        latest = next((v.number for v in versions if v.state == "ENABLED"), None)
        named = secrets.resolve(versions, version)
        access = secrets.can_access(project, secret, member)
        problem = fix = None
        if named is None:
            problem, fix = f"secret {secret} has no version {version}", set_fix
        elif named.state != "ENABLED":
            problem = f"version {named.number} of secret {secret} is {named.state.lower()}"
            fix = (
                f"run `govctl secrets set {name}` to add a new version"
                if version == "latest"
                else f"`gcloud secrets versions enable {named.number} --secret {secret}`, or "
                f"point [job] secrets.{name} at an enabled version"
            )
        elif not access:
            problem = (
                f"the job's service account {cfg.job.service_account} cannot read secret {secret}"
            )
            fix = (
                f"run `govctl secrets set {name}` (it grants access), or `gcloud secrets "
                f"add-iam-policy-binding {secret} --project {project} --member {member} "
                "--role roles/secretmanager.secretAccessor`"
            )
        found.append(SecretStatus(
            name, secret, version, True, latest, named.state if named else None, access,
            problem, fix,
        ))  # fmt: skip
    return found


def ensure_access(cfg: Config) -> list[str]:
    """Grant the job's service account read access on each existing ``[job] secrets``
    secret it cannot read yet (what `govctl setup` and `govctl doctor --fix` do); returns
    what was granted. Missing secrets and versions are left to `govctl secrets set`."""
    from govctl.gcp import secrets

    project = cfg.require_project()
    member = f"serviceAccount:{cfg.job.service_account}"
    done = []
    for name, ref in sorted(cfg.job.secrets.items()):
        secret, _ = validate.secret_ref(ref, f"[job] secrets entry {name}")
        if secrets.exists(project, secret) and not secrets.can_access(project, secret, member):
            secrets.grant_access(project, secret, member)
            done.append(f"granted {secrets.ACCESSOR} to {member} on secret {secret}")
    return done
