"""The service account `deploy --build cloud` runs its builds as, and the least it needs.

Since Cloud Build's 2024 change, a project that starts using Cloud Build runs a build that names
no account as the Compute Engine default service account, which may lack the rights to push to
Artifact Registry and to write logs
(https://cloud.google.com/build/docs/cloud-build-service-account-updates). Google recommends a
service account of one's own, holding what the build needs
(https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts):
``[build] service_account`` (default ``govreposcrape-build@PROJECT.iam.gserviceaccount.com``).

What `govctl setup` makes for it, in order, each a resource of its plan (:func:`plan`,
:func:`apply`), and what a build does with it (the roles Cloud Run's guide names for a build
service account, https://cloud.google.com/run/docs/configuring/services/build-service-account,
each granted on the one resource it is for):

- the service account itself;
- ``roles/logging.logWriter`` on the project: the build's log goes to Cloud Logging only (the
  logging option a build with its own account needs), written as that account;
- ``roles/artifactregistry.writer`` on the image's repository only: the push;
- the source staging bucket ``gs://PROJECT_cloudbuild`` (where `gcloud builds submit`, and
  govctl, upload the source; made in the US multi-region as gcloud makes it, with uniform
  bucket-level access and public access prevention);
- ``roles/storage.objectViewer`` on that bucket only: reading the source (the build lists and
  gets the object; without it the fetch is denied, as
  GoogleCloudPlatform/bigquery-dlp-remote-function#70 shows).

Checked, not made: whether the caller may act as the account (``iam.serviceAccounts.actAs``,
which creating a build that names it needs). `govctl doctor` checks all of it
(:mod:`govctl.services.doctor.builds`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from govctl.config import Config
from govctl.gcp import artifacts, buckets, iam
from govctl.gcp.artifacts import ImageRef
from govctl.gcp.build import staging_bucket
from govctl.services.plan import CREATE, UNCHANGED, Change, Problem, ResourcePlan

LOG_WRITER = "roles/logging.logWriter"
PUSHER = "roles/artifactregistry.writer"
SOURCE_READER = "roles/storage.objectViewer"
ACT_AS = "iam.serviceAccounts.actAs"
DISPLAY_NAME = "govreposcrape image builds (govctl)"
# Where gcloud builds submit makes the staging bucket.
STAGING_LOCATION = "US"
ACCOUNT, BUCKET, IAM = "service account", "bucket", "iam"


@dataclass(frozen=True)
class BuildPlan:
    """The build account's part of setup's plan, and what apply needs for it."""

    resources: tuple[ResourcePlan, ...]
    notes: tuple[str, ...]
    problems: tuple[Problem, ...]
    project: str
    account: str
    repository: ImageRef
    bucket: str
    # What apply must find unchanged (read-modify-write refuses a change made since the plan).
    repository_etag: bytes | None
    bucket_etag: str | None

    @property
    def member(self) -> str:
        return f"serviceAccount:{self.account}"

    def owns(self, r: ResourcePlan) -> bool:
        return r in self.resources


def _grant(name: str, member: str, held: bool) -> ResourcePlan:
    if held:
        return ResourcePlan(IAM, name, UNCHANGED)
    return ResourcePlan(IAM, name, CREATE, (Change("member", None, member),))


def _account(cfg: Config, project: str, readable: bool) -> tuple[ResourcePlan, bool, list[str]]:
    """The account's plan, whether it exists, notes."""
    email = cfg.build.service_account
    found = iam.service_account(project, email) if readable else None
    if found is None:
        made = (Change("display_name", None, DISPLAY_NAME),)
        return ResourcePlan(ACCOUNT, email, CREATE, made), False, []
    notes = []
    if found.disabled:
        notes.append(
            f"service account {email} is disabled: builds as it fail; enable it: gcloud iam "
            f"service-accounts enable {email} --project {project}"
        )
    return ResourcePlan(ACCOUNT, email, UNCHANGED), True, notes


def _own(cfg: Config, project: str) -> Problem | None:
    email = cfg.build.service_account
    if email.endswith(f"@{project}.iam.gserviceaccount.com"):
        return None
    return Problem(
        f"service account {email} does not exist and is not one setup can create in "
        f"project {project}",
        f"create it where it belongs, or set [build] service_account to "
        f"NAME@{project}.iam.gserviceaccount.com",
    )


def _repository_grant(
    ref: ImageRef, member: str, readable: bool
) -> tuple[ResourcePlan, bytes | None]:
    name = f"{PUSHER} on repository {ref.repository}"
    found = artifacts.repository_policy(ref) if readable else None
    if found is None:  # the repository is made by this same setup (or its API is off)
        return _grant(name, member, False), None
    return _grant(name, member, found.policy.holds(member, PUSHER)), found.etag


def _staging(
    project: str, member: str, readable: bool
) -> tuple[list[ResourcePlan], str | None, list[str]]:
    """The staging bucket and the account's read access to it; the policy's etag; notes."""
    name = staging_bucket(project)
    label, grant = f"gs://{name}", f"{SOURCE_READER} on gs://{name}"
    if not readable or buckets.get(name, project) is None:
        made = (
            Change("location", None, STAGING_LOCATION),
            Change("uniform_bucket_level_access", None, "on"),
            Change("public_access_prevention", None, buckets.ENFORCED),
        )
        return [ResourcePlan(BUCKET, label, CREATE, made), _grant(grant, member, False)], None, []
    policy = buckets.get_policy(name, project)
    if not isinstance(policy, buckets.BucketPolicy):  # UNSUPPORTED (fake-gcs-server)
        note = (
            f"{SOURCE_READER} for the build account on {label}: not checked and not applied: "
            "the storage server has no bucket IAM (fake-gcs-server); on Google Cloud setup "
            "grants it"
        )
        return [ResourcePlan(BUCKET, label, UNCHANGED)], None, [note]
    held = policy.policy.holds(member, SOURCE_READER)
    return [ResourcePlan(BUCKET, label, UNCHANGED), _grant(grant, member, held)], policy.etag, []


def act_as(project: str, email: str, account_exists: bool) -> str | None:
    """Why the caller may not create builds as the account (None: it may)."""
    caller = iam.caller()
    if account_exists:
        held = ACT_AS in iam.test_service_account(project, email, [ACT_AS])
    else:  # a new account inherits the project's grants
        held = ACT_AS in iam.test_project(project, [ACT_AS])
    if held:
        return None
    who = "you" if caller == iam.UNKNOWN_USER else caller
    return (
        f"{who} may not act as {email} ({ACT_AS}): `deploy --build cloud` will be refused; "
        f"ask an owner: gcloud iam service-accounts add-iam-policy-binding {email} "
        f"--member={caller} --role=roles/iam.serviceAccountUser"
    )


def plan(cfg: Config, project: str, readable: Callable[[str], bool]) -> BuildPlan:
    """The build account's resources; reads only. ``readable(api)`` says whether an API may
    be read yet (setup enables them first)."""
    email = cfg.build.service_account
    member = f"serviceAccount:{email}"
    account, exists, notes = _account(cfg, project, readable("iam"))
    problems = [p] if not exists and (p := _own(cfg, project)) else []
    policy = iam.project_policy(project) if exists else None
    logs = _grant(
        f"{LOG_WRITER} on project {project}", member,
        policy is not None and policy.holds(member, LOG_WRITER),
    )  # fmt: skip
    ref = artifacts.parse_image(cfg.job.image)
    push, repository_etag = _repository_grant(ref, member, readable("artifactregistry"))
    staging, bucket_etag, more = _staging(project, member, readable("storage"))
    notes += more
    if readable("iam") and (refused := act_as(project, email, exists)):
        notes.append(refused)
    return BuildPlan(
        resources=(account, logs, push, *staging), notes=tuple(notes), problems=tuple(problems),
        project=project, account=email, repository=ref, bucket=staging_bucket(project),
        repository_etag=repository_etag, bucket_etag=bucket_etag,
    )  # fmt: skip


def _make_account(p: BuildPlan) -> tuple[str, str | None]:
    iam.create_service_account(p.project, p.account.split("@", 1)[0], DISPLAY_NAME)
    return f"created service account {p.account}", None


def _make_bucket(p: BuildPlan) -> tuple[str, str | None]:
    if buckets.get(p.bucket, p.project) is None:  # made meanwhile (a build), or its API was off
        buckets.create(p.bucket, p.project, STAGING_LOCATION)
    return f"created bucket gs://{p.bucket} in {STAGING_LOCATION} (build sources)", None


def _grant_logs(p: BuildPlan) -> tuple[str, str | None]:
    iam.grant_on_project(p.project, LOG_WRITER, p.member)
    return f"granted {LOG_WRITER} to {p.member} on project {p.project}", None


def _grant_push(p: BuildPlan) -> tuple[str, str | None]:
    artifacts.grant_on_repository(p.repository, PUSHER, p.member, p.repository_etag)
    return f"granted {PUSHER} to {p.member} on repository {p.repository.repository}", None


def _grant_source(p: BuildPlan) -> tuple[str, str | None]:
    granted = buckets.add_member(p.bucket, SOURCE_READER, p.member, p.bucket_etag, p.project)
    if granted is None:
        return "", (
            f"{SOURCE_READER} on gs://{p.bucket} not applied: the storage server has no bucket "
            "IAM (fake-gcs-server); on Google Cloud: gcloud storage buckets "
            f"add-iam-policy-binding gs://{p.bucket} --member={p.member} --role={SOURCE_READER}"
        )
    return f"granted {SOURCE_READER} to {p.member} on gs://{p.bucket}", None


def apply(p: BuildPlan, r: ResourcePlan) -> tuple[str, str | None]:
    """Make one of the plan's resources; what was done ("" for nothing), and a warning."""
    if r.kind == ACCOUNT:
        return _make_account(p)
    if r.kind == BUCKET:
        return _make_bucket(p)
    if r.name.startswith(LOG_WRITER):
        return _grant_logs(p)
    if r.name.startswith(PUSHER):
        return _grant_push(p)
    return _grant_source(p)


def deploy_problem(cfg: Config, project: str) -> Problem | None:
    """What stops `deploy --build cloud` before it builds: the build account is missing."""
    email = cfg.build.service_account
    if iam.service_account(project, email) is not None:
        return None
    return Problem(
        f"build service account {email} does not exist",
        "run `govctl setup` (it makes the account and grants what a build needs), or set "
        "[build] service_account",
    )
