"""Service Usage: which of the APIs a deployment needs are enabled, and enabling them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from govctl.gcp import clients, operations
from govctl.gcp.errors import translate

# What a deployment uses (GCP-FACTS.md; containerregistry is shut down and not needed).
NEEDED = (
    "run.googleapis.com",
    "cloudscheduler.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "logging.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
)


def enabled(project: str, names: Sequence[str] = NEEDED) -> dict[str, bool]:
    """Each of ``names`` -> whether it is enabled in the project (one batched call)."""
    from google.cloud import service_usage_v1

    with translate(f"read the enabled APIs of project {project}"):
        answer = clients.service_usage().batch_get_services(
            request=service_usage_v1.BatchGetServicesRequest(
                parent=f"projects/{project}",
                names=[f"projects/{project}/services/{n}" for n in names],
            )
        )
    parse = service_usage_v1.ServiceUsageClient.parse_service_path
    state = {s.config.name or parse(s.name).get("service"): s.state for s in answer.services}
    on = service_usage_v1.State.ENABLED
    return {n: state.get(n) == on for n in names}


def enable(project: str, names: Iterable[str]) -> list[str]:
    """Enable the APIs (a no-op for enabled ones); returns the names asked for."""
    from google.cloud import service_usage_v1

    wanted = list(names)
    if not wanted:
        return []
    with translate(
        f"enable {', '.join(wanted)} in project {project}",
        denied="enabling APIs needs roles/serviceusage.serviceUsageAdmin (or owner/editor)",
    ):
        op = clients.service_usage().batch_enable_services(
            request=service_usage_v1.BatchEnableServicesRequest(
                parent=f"projects/{project}", service_ids=wanted
            )
        )
        operations.result(op)
    return wanted
