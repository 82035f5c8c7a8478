"""Reading what exists into setup's plan: each resource planned, only through the APIs that
are on (a disabled one is planned as "create if missing")."""

from __future__ import annotations

from collections.abc import Callable

from govctl.config import Config
from govctl.errors import ApiDisabled
from govctl.gcp import artifacts, billing_info, buckets, iam, jobs, services
from govctl.gcp.artifacts import ImageRef
from govctl.gcp.buckets import Bucket
from govctl.gcp.iam import ServiceAccount
from govctl.services import apis as needed_apis
from govctl.services import build_account, retention
from govctl.services.plan import (
    CREATE,
    UNCHANGED,
    UPDATE,
    Change,
    Plan,
    Problem,
    ResourcePlan,
)
from govctl.services.setup.model import (
    ACCOUNT,
    ACT_AS,
    API,
    BUCKET,
    DISPLAY_NAME,
    IAM,
    INDEX,
    INVOKER,
    PROJECT_WIDE,
    REPOSITORY,
    SetupPlan,
)


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
    # Cloud Billing is charged to the caller's quota project (client-based), so whether it
    # answers does not follow from this project's APIs: ask, and say so if it is off there.
    try:
        info = billing_info.project_billing(project)
    except ApiDisabled as err:
        return None, f"billing not checked: {err}"
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
        try:
            held = ACT_AS in iam.test_project(project, [ACT_AS])
        except ApiDisabled as err:
            return f"whether {who} may act as {email} ({ACT_AS}) not checked: {err}"
    if held:
        return f"{who} may act as {email} ({ACT_AS}), as deploy needs"
    return (
        f"{who} lack{'' if who == 'you' else 's'} {ACT_AS} on {email}: `govctl deploy` "
        "will be refused; ask an owner: "
        f"gcloud iam service-accounts add-iam-policy-binding {email} --member={caller} "
        "--role=roles/iam.serviceAccountUser"
    )


def _project_wide(project: str, member: str) -> list[str]:
    try:  # Resource Manager: charged to the caller's quota project, see _billing
        policy = iam.project_policy(project)
    except ApiDisabled as err:
        return [f"project-wide grants to {member} not checked: {err}"]
    wide = [r for r in PROJECT_WIDE if policy.holds(member, r)]
    return [
        f"{member} also holds {role} on the whole project (the old runbook's grant), so it "
        f"reaches every bucket or job of it; remove it: gcloud projects "
        f"remove-iam-policy-binding {project} --member={member} --role={role}"
        for role in wide
    ]


def _retention(
    project: str,
    bucket: str,
    target: ImageRef,
    readable: Callable[[str], bool],
    bucket_exists: bool,
    repo_plan: ResourcePlan,
) -> tuple[ResourcePlan, ResourcePlan]:
    """The run-prefix lifecycle rule and the image cleanup policies (read only where their
    bucket or repository exists)."""
    rule = retention.plan_rule(project, bucket, readable("storage") and bucket_exists)
    repo_exists = readable("artifactregistry") and repo_plan.action != CREATE
    return rule, retention.plan_policies(target, repo_exists)


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
    api_plans, on = _apis(project, needed_apis.names(cfg, with_index=with_index))
    readable = _readable(on)
    billing_problem, billing_note = _billing(project)
    problems = [billing_problem] if billing_problem else []
    notes = [billing_note]
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
    rule_plan, policy_plan = _retention(
        project, cfg.bucket, target, readable, bucket_found is not None, repo_plan
    )
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

    resources = [*api_plans, account_plan, bucket_plan, rule_plan]
    resources += [bucket_iam] if bucket_iam else []
    resources += [repo_plan, policy_plan]
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
