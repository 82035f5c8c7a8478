"""What a setup plan holds besides its resources, and the names it uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from govctl.gcp.artifacts import ImageRef
from govctl.services import apis as needed_apis
from govctl.services.build_account import BuildPlan
from govctl.services.plan import (
    Plan,
)

INVOKER = "roles/run.invoker"
SECRETS_API = needed_apis.SECRETS
INDEX_API = needed_apis.INDEX
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
