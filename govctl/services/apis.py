"""The Google APIs a configuration uses: one list, derived from the settings, that `govctl
setup` enables and `govctl doctor` checks.

A call to an API that is disabled in the project is refused (PERMISSION_DENIED, reason
``SERVICE_DISABLED``: googleapis ``google/api/error_reason.proto``), so every API a command of
this configuration calls is here, each with what needs it. Logging, Monitoring, Service Usage
and Cloud Storage are enabled in every new project
(https://cloud.google.com/service-usage/docs/enabled-service#default); they are listed all the
same, so that one someone disabled is found. ``containerregistry`` (the old runbook's) is shut
down and not used (GCP-FACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from govctl.config import Config

SECRETS = "secretmanager.googleapis.com"
INDEX = "discoveryengine.googleapis.com"


@dataclass(frozen=True)
class Api:
    name: str  # as Service Usage names it: run.googleapis.com
    why: str  # what of the configuration uses it

    @property
    def short(self) -> str:
        return self.name.removesuffix(".googleapis.com")


# What every deployment uses, in the order setup shows them.
BASE = (
    Api("run.googleapis.com", "the Cloud Run job"),
    Api("cloudscheduler.googleapis.com", "the schedule"),
    Api("artifactregistry.googleapis.com", "the job's image"),
    Api("cloudbuild.googleapis.com", "building the image (deploy)"),
    Api("logging.googleapis.com", "the job's logs"),
    Api("iam.googleapis.com", "the job's service account"),
    Api("storage.googleapis.com", "the digest bucket"),
    Api("cloudresourcemanager.googleapis.com", "the project and its IAM policy"),
    Api("cloudbilling.googleapis.com", "billing status and Cloud Run prices"),
    Api("monitoring.googleapis.com", "alerts"),
)


def index_configured(cfg: Config) -> bool:
    """Whether the settings name a search index (an ``[index]`` key set anywhere)."""
    return any(
        cfg.settings[key].source != "default"
        for key in ("index.data_store", "index.location")
        if key in cfg.settings
    )


def needed(cfg: Config, *, with_index: bool = False) -> tuple[Api, ...]:
    """Every API this configuration uses; ``with_index`` adds Discovery Engine as if
    ``[index]`` were set (`setup --with-index`)."""
    found = list(BASE)
    if cfg.job.secrets:
        found.append(Api(SECRETS, "[job] secrets"))
    if with_index or index_configured(cfg):
        found.append(Api(INDEX, "the search index ([index])"))
    return tuple(found)


def names(cfg: Config, *, with_index: bool = False) -> tuple[str, ...]:
    return tuple(a.name for a in needed(cfg, with_index=with_index))
