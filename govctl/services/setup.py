"""What `govctl setup` means: the one-time pieces a deployment stands on, planned like deploy
(the same plan model and rendering) and made idempotently.

Resources, in the order they are applied (each needs the ones before): the APIs; the job's
service account; the digest bucket (in the job's region, uniform bucket-level access, public
access prevention enforced); the service account's object rights on **this bucket only**; the
Artifact Registry repository of the image; ``run.invoker`` on **this job** when the job exists
(``govctl deploy`` grants it when it creates the job); read access to each ``[job] secrets``
secret that exists (Secret Manager's API is enabled only when secrets are configured; values
are ``govctl secrets set``'s, never setup's); the service account builds run as, its rights
and the source staging bucket (:mod:`govctl.services.build_account`). Checked and reported, not
made:
billing (a problem: nothing is applied without it) and whether the caller may act as the
service account (what deploy will need).

Reads of a service whose API is still disabled are not made (Google refuses them): the
resource is planned as "create if missing", and apply looks again once the API is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from govctl.config import Config
from govctl.gcp import artifacts, billing_info, buckets, iam, jobs, services
from govctl.gcp.artifacts import ImageRef
from govctl.gcp.buckets import Bucket
from govctl.gcp.iam import ServiceAccount
from govctl.services import build_account
from govctl.services.build_account import BuildPlan
from govctl.services.plan import (
    CREATE,
    UNCHANGED,
    UPDATE,
    Applied,
    Change,
    Plan,
    Problem,
    ResourcePlan,
)

INVOKER = "roles/run.invoker"
SECRETS_API = "secretmanager.googleapis.com"
INDEX_API = "discoveryengine.googleapis.com"
ACT_AS = "iam.serviceAccounts.actAs"
DISPLAY_NAME = "govreposcrape ingestion (govctl)"
REPOSITORY_DESCRIPTION = "govreposcrape ingestion images (govctl)"
# Project-wide grants the old runbook made; setup's are per bucket and per job instead.
PROJECT_WIDE = ("roles/storage.objectAdmin", "roles/storage.admin", INVOKER)

# ResourcePlan.kind of each resource setup manages
API, ACCOUNT, BUCKET, IAM, REPOSITORY = "api", "service account", "bucket", "iam", "repository"
INDEX = "data store"


@dataclass(frozen=True)
class SetupPlan:
    plan: Plan
    # what apply needs besides the resources
    account: str
    bucket: str
    repository: ImageRef
    job_path: str
    secret_ids: dict[str, str] = field(default_factory=dict)  # resource name -> secret id
    # what could not be planned until an API this plan enables is on: a rerun plans it
    deferred: tuple[str, ...] = ()
    index_path: str = ""  # the data store, with --with-index
    build: BuildPlan | None = None  # the account builds run as, its rights, the staging bucket
    # What apply must find unchanged: read-modify-write refuses a change made since the plan.
    bucket_metageneration: int | None = None
    bucket_policy_etag: str | None = None
    job_policy_etag: bytes | None = None

    @property
    def project(self) -> str:
        return self.plan.project

    @property
    def region(self) -> str:
        return self.plan.region

    @property
    def has_changes(self) -> bool:
        return self.plan.has_changes

    @property
    def member(self) -> str:
        return f"serviceAccount:{self.account}"


def _apis(project: str, names: tuple[str, ...]) -> tuple[list[ResourcePlan], dict[str, bool]]:
    state = services.enabled(project, names)
    plans = [ResourcePlan(API, name, UNCHANGED if on else CREATE) for name, on in state.items()]
    return plans, state


def _account(
    cfg: Config, project: str, readable: bool
) -> tuple[ResourcePlan, ServiceAccount | None, list[str]]:
    """The service account's plan, the account as read (None: missing or unread), notes."""
    email = cfg.job.service_account
    found = iam.service_account(project, email) if readable else None
    notes = []
    if found is not None and found.disabled:
        notes.append(
            f"service account {email} is disabled: the job's tasks get no credentials; "
            f"enable it: gcloud iam service-accounts enable {email} --project {project}"
        )
    if found is not None:
        return ResourcePlan(ACCOUNT, email, UNCHANGED), found, notes
    changes = (Change("display_name", None, DISPLAY_NAME),)
    if not readable:
        notes.append(
            f"service account {email}: not read while the iam API is off; created once it "
            "is on, unless it exists"
        )
    return ResourcePlan(ACCOUNT, email, CREATE, changes), None, notes


def _own_account(cfg: Config, project: str) -> Problem | None:
    """setup can create only an account of this project, named ID@PROJECT.iam…"""
    email = cfg.job.service_account
    if email.endswith(f"@{project}.iam.gserviceaccount.com"):
        return None
    return Problem(
        f"service account {email} does not exist and is not one setup can create in "
        f"project {project}",
        f"create it where it belongs, or set [job] service_account to "
        f"NAME@{project}.iam.gserviceaccount.com",
    )


def _bucket(
    cfg: Config, project: str, readable: bool
) -> tuple[ResourcePlan, Bucket | None, list[str]]:
    name, region = cfg.bucket, cfg.region
    found = buckets.get(name, project) if readable else None
    label = f"gs://{name}"
    if found is None:
        new = (
            Change("location", None, region.upper()),
            Change("uniform_bucket_level_access", None, "on"),
            Change("public_access_prevention", None, buckets.ENFORCED),
        )
        return ResourcePlan(BUCKET, label, CREATE, new), None, []
    notes = []
    if found.location and found.location != region.upper():
        notes.append(
            f"{label} is in {found.location}, the job in {region.upper()}: every digest crosses "
            "regions, and a bucket cannot move; for a bucket in the region set [bucket] name "
            "to a new name and rerun setup"
        )
    changes: list[Change] = []
    unknown: list[str] = []
    if found.uniform_access is None:
        unknown.append("uniform bucket-level access")
    elif not found.uniform_access:
        changes.append(Change("uniform_bucket_level_access", "off", "on"))
    if found.public_access_prevention is None:
        unknown.append("public access prevention")
    elif found.public_access_prevention != buckets.ENFORCED:
        changes.append(
            Change("public_access_prevention", found.public_access_prevention, buckets.ENFORCED)
        )
    if unknown:
        notes.append(
            f"{label}: {' and '.join(unknown)} not checked: the storage server does not report "
            "them (fake-gcs-server keeps neither)"
        )
    action = UPDATE if changes else UNCHANGED
    return ResourcePlan(BUCKET, label, action, tuple(changes)), found, notes


def _bucket_iam(
    cfg: Config, project: str, bucket_found: Bucket | None, member: str
) -> tuple[ResourcePlan | None, str | None, list[str]]:
    """The job's object rights on the bucket, the etag of its policy as read, notes."""
    role, label = buckets.JOB_ROLE, f"gs://{cfg.bucket}"
    name = f"{role} on {label}"
    if bucket_found is None:
        return ResourcePlan(IAM, name, CREATE, (Change("member", None, member),)), None, []
    policy = buckets.get_policy(cfg.bucket, project)
    if not isinstance(policy, buckets.BucketPolicy):  # UNSUPPORTED
        return None, None, [
            f"{role} for {cfg.job.service_account} on {label}: not checked and not applied: "
            "the storage server has no bucket IAM (fake-gcs-server); on Google Cloud setup "
            "grants it"
        ]  # fmt: skip
    if policy.policy.holds(member, role):
        return ResourcePlan(IAM, name, UNCHANGED), policy.etag, []
    changes = (Change("member", None, member),)
    return ResourcePlan(IAM, name, CREATE, changes), policy.etag, []


def _repository(
    cfg: Config, readable: bool
) -> tuple[ResourcePlan, artifacts.ImageRef, Problem | None]:
    target = artifacts.parse_image(cfg.job.image)
    label = f"{target.repository} ({target.location}-docker.pkg.dev/{target.project})"
    found = (
        artifacts.get_repository(target.project, target.location, target.repository)
        if readable
        else None
    )
    if found is not None:
        problem = None
        if found.format != "DOCKER":
            problem = Problem(
                f"Artifact Registry repository {found.name} holds {found.format}, not Docker "
                "images",
                "set [job] image to a path in a Docker repository",
            )
        return ResourcePlan(REPOSITORY, label, UNCHANGED), target, problem
    changes = (Change("format", None, "DOCKER"), Change("location", None, target.location))
    return ResourcePlan(REPOSITORY, label, CREATE, changes), target, None


def _job_iam(
    cfg: Config, member: str, readable: bool
) -> tuple[ResourcePlan | None, bytes | None, list[str]]:
    """run.invoker on the job when it exists, the etag of its policy as read, notes."""
    name = f"{INVOKER} on job {cfg.job.name}"
    later = (
        f"{INVOKER} for {cfg.job.service_account} on job {cfg.job.name}: the job does not exist "
        "yet; `govctl deploy` creates it and grants the role"
    )
    if not readable or jobs.get_job(cfg.job_path) is None:
        return None, None, [later]
    policy = jobs.get_policy(cfg.job_path)
    if member in policy.bindings.get(INVOKER, ()):
        return ResourcePlan(IAM, name, UNCHANGED), policy.etag, []
    grant = (Change("member", None, member),)
    return ResourcePlan(IAM, name, CREATE, grant), policy.etag, []


def _secrets(
    cfg: Config, member: str, readable: bool
) -> tuple[list[ResourcePlan], dict[str, str], list[str]]:
    """For each ``[job] secrets`` entry whose secret exists: read access for the service
    account (a resource); anything setup cannot make (a missing secret or version) is a note
    with `govctl secrets set`. Also resource name -> secret id, for apply."""
    from govctl.gcp import secrets as secret_store
    from govctl.services import secrets

    if not cfg.job.secrets:
        return [], {}, []
    if not readable:
        names = ", ".join(sorted(cfg.job.secrets))
        return [], {}, [f"[job] secrets ({names}): checked once the secretmanager API is on"]

    plans, ids, notes = [], {}, []
    for st in secrets.status(cfg):
        if not st.exists:
            notes.append(f"{st.problem}: {st.fix}")
            continue
        name = f"{secret_store.ACCESSOR} on secret {st.secret}"
        ids[name] = st.secret
        if st.access:
            plans.append(ResourcePlan(IAM, name, UNCHANGED))
        else:
            plans.append(ResourcePlan(IAM, name, CREATE, (Change("member", None, member),)))
        if st.problem and not st.problem.endswith(f"cannot read secret {st.secret}"):
            notes.append(f"{st.problem}: {st.fix}")  # a version setup cannot make
    return plans, ids, notes


def _index_path(cfg: Config) -> str:
    from govctl.services.index import data_store_path

    return data_store_path(cfg)


def _index(cfg: Config, readable: bool) -> ResourcePlan:
    """The Vertex AI Search data store that indexes the bucket (``--with-index``)."""
    from govctl.gcp import index

    path = _index_path(cfg)
    name = f"{cfg.index.data_store} ({cfg.index.location})"
    if readable and index.get_data_store(path) is not None:
        return ResourcePlan(INDEX, name, UNCHANGED)
    return ResourcePlan(INDEX, name, CREATE, (Change("indexes", None, f"gs://{cfg.bucket}"),))


def _billing(project: str) -> tuple[Problem | None, str]:
    info = billing_info.project_billing(project)
    if info.enabled:
        return None, f"billing is enabled ({info.account})"
    return (
        Problem(
            f"billing is disabled for project {project}: Cloud Run jobs cannot run without it",
            f"gcloud billing projects link {project} --billing-account=ACCOUNT_ID "
            "(list accounts: gcloud billing accounts list)",
        ),
        "billing is disabled",
    )


def _act_as(project: str, email: str, account_exists: bool) -> str:
    """Whether the caller may act as the job's service account (deploy needs it)."""
    caller = iam.caller()
    who = "you" if caller == iam.UNKNOWN_USER else caller
    if account_exists:
        held = ACT_AS in iam.test_service_account(project, email, [ACT_AS])
    else:  # a new account inherits the project's grants
        held = ACT_AS in iam.test_project(project, [ACT_AS])
    if held:
        return f"{who} may act as {email} ({ACT_AS}), as deploy needs"
    return (
        f"{who} lack{'' if who == 'you' else 's'} {ACT_AS} on {email}: `govctl deploy` "
        "will be refused; ask an owner: "
        f"gcloud iam service-accounts add-iam-policy-binding {email} --member={caller} "
        "--role=roles/iam.serviceAccountUser"
    )


def _project_wide(project: str, member: str) -> list[str]:
    policy = iam.project_policy(project)
    wide = [r for r in PROJECT_WIDE if policy.holds(member, r)]
    return [
        f"{member} also holds {role} on the whole project (the old runbook's grant), so it "
        f"reaches every bucket or job of it; remove it: gcloud projects "
        f"remove-iam-policy-binding {project} --member={member} --role={role}"
        for role in wide
    ]


def _readable(on: dict[str, bool]) -> Callable[[str], bool]:
    """Whether a service's API may be read: it is on, or setup does not manage it."""
    return lambda api: on.get(f"{api}.googleapis.com", True)


def _act_as_note(cfg: Config, project: str, readable: bool, account_exists: bool) -> str:
    if readable:
        return _act_as(project, cfg.job.service_account, account_exists)
    return (
        f"whether you may act as {cfg.job.service_account} ({ACT_AS}, which deploy needs) "
        "is checked once the iam API is on: `govctl doctor`"
    )


def plan(cfg: Config, with_index: bool = False) -> SetupPlan:
    """What setup would change; reads only. ``with_index`` adds the search data store."""
    project = cfg.require_project()
    member = f"serviceAccount:{cfg.job.service_account}"
    billing_problem, billing_note = _billing(project)
    problems = [billing_problem] if billing_problem else []
    notes = [billing_note]

    wanted = services.NEEDED + ((SECRETS_API,) if cfg.job.secrets else ())
    api_plans, on = _apis(project, wanted + ((INDEX_API,) if with_index else ()))
    readable = _readable(on)
    account_plan, account, more = _account(cfg, project, readable("iam"))
    notes += more
    if account_plan.action == CREATE and (wrong := _own_account(cfg, project)):
        problems.append(wrong)
    bucket_plan, bucket_found, more = _bucket(cfg, project, readable("storage"))
    notes += more
    bucket_iam, bucket_etag, more = _bucket_iam(cfg, project, bucket_found, member)
    notes += more
    repo_plan, target, repo_problem = _repository(cfg, readable("artifactregistry"))
    problems += [repo_problem] if repo_problem else []
    job_iam, job_etag, more = _job_iam(cfg, member, readable("run"))
    notes += more
    secret_plans, secret_ids, more = _secrets(cfg, member, readable("secretmanager"))
    notes += more
    build = build_account.plan(cfg, project, readable)
    notes += build.notes
    problems += build.problems
    if account is not None:
        notes += _project_wide(project, member)
    notes.append(_act_as_note(cfg, project, readable("iam"), account is not None))

    resources = [*api_plans, account_plan, bucket_plan]
    resources += [bucket_iam] if bucket_iam else []
    resources.append(repo_plan)
    resources += [job_iam] if job_iam else []
    resources += secret_plans
    resources += build.resources
    resources += [_index(cfg, readable("discoveryengine"))] if with_index else []
    shared = Plan(project, cfg.region, tuple(resources), tuple(problems), tuple(notes))
    return SetupPlan(
        plan=shared,
        account=cfg.job.service_account,
        bucket=cfg.bucket,
        repository=target,
        job_path=cfg.job_path,
        secret_ids=secret_ids,
        deferred=("[job] secrets",) if cfg.job.secrets and not readable("secretmanager") else (),
        index_path=_index_path(cfg) if with_index else "",
        bucket_metageneration=bucket_found.metageneration if bucket_found else None,
        bucket_policy_etag=bucket_etag,
        job_policy_etag=job_etag,
        build=build,
    )


class _Report:
    """What apply did, and what it could not do without stopping."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.warnings: list[str] = []


def _make_account(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    iam.create_service_account(p.project, p.account.split("@", 1)[0], DISPLAY_NAME)
    report.done.append(f"created service account {p.account}")


def _make_bucket(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    if r.action == UPDATE:
        buckets.secure(p.bucket, p.project, p.bucket_metageneration)
        report.done.append(
            f"updated bucket gs://{p.bucket}: uniform bucket-level access on, public access "
            "prevention enforced"
        )
    elif buckets.get(p.bucket, p.project) is None:  # made meanwhile, or its API was off
        buckets.create(p.bucket, p.project, p.region)
        report.done.append(f"created bucket gs://{p.bucket} in {p.region}")


def _make_repository(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    ref = p.repository
    if artifacts.get_repository(ref.project, ref.location, ref.repository) is None:
        artifacts.create_repository(
            ref.project, ref.location, ref.repository, description=REPOSITORY_DESCRIPTION
        )
        report.done.append(f"created Artifact Registry repository {r.name}")


def _make_index(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    from govctl.gcp import index

    if index.get_data_store(p.index_path) is None:  # its API may have been off
        index.create_data_store(p.index_path, f"govreposcrape digests (gs://{p.bucket})")
        report.done.append(f"created data store {r.name}")


def _grant_on_bucket(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    role = buckets.JOB_ROLE
    granted = buckets.add_member(p.bucket, role, p.member, p.bucket_policy_etag, p.project)
    if granted is None:
        report.warnings.append(
            f"{role} on gs://{p.bucket} not applied: the storage server has no bucket IAM "
            "(fake-gcs-server); on Google Cloud: gcloud storage buckets add-iam-policy-binding "
            f"gs://{p.bucket} --member={p.member} --role={role}"
        )
    else:
        report.done.append(f"granted {role} to {p.member} on gs://{p.bucket}")


def _grant_on_secret(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    from govctl.gcp import secrets

    secrets.grant_access(p.project, p.secret_ids[r.name], p.member)
    report.done.append(f"granted {r.name.replace(' on ', f' to {p.member} on ', 1)}")


def _grant_on_job(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    jobs.add_member(p.job_path, INVOKER, p.member, p.job_policy_etag)
    report.done.append(f"granted {INVOKER} to {p.member} on job {jobs.job_id(p.job_path)}")


def _grant(p: SetupPlan, r: ResourcePlan, report: _Report) -> None:
    if r.name.endswith(f"gs://{p.bucket}"):
        _grant_on_bucket(p, r, report)
    elif r.name in p.secret_ids:
        _grant_on_secret(p, r, report)
    else:
        _grant_on_job(p, r, report)


# How each kind of resource is made; APIs are enabled first, all in one call.
_MAKE: dict[str, Callable[[SetupPlan, ResourcePlan, _Report], None]] = {
    ACCOUNT: _make_account,
    BUCKET: _make_bucket,
    REPOSITORY: _make_repository,
    INDEX: _make_index,
    IAM: _grant,
}


def apply(p: SetupPlan) -> Applied:
    """Make the plan's changes, in order; writes nothing when it has problems."""
    if p.plan.problems:
        raise p.plan.refusal("set up")
    todo = [r for r in p.plan.resources if r.action != UNCHANGED]
    report = _Report()
    apis = [r.name for r in todo if r.kind == API]
    if apis:
        services.enable(p.project, apis)
        report.done.append(f"enabled {', '.join(apis)}")
    for r in todo:
        if p.build is not None and p.build.owns(r):
            done, warning = build_account.apply(p.build, r)
            report.done += [done] if done else []
            report.warnings += [warning] if warning else []
        elif r.kind != API:
            _MAKE[r.kind](p, r, report)
    return Applied(tuple(report.done), tuple(report.warnings))
