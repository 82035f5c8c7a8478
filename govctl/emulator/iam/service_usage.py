"""Service Usage v1 (``google.api.serviceusage.v1.ServiceUsage``): which APIs a project enabled.

ListServices, GetService, BatchGetServices, EnableService, BatchEnableServices,
DisableService (operations come back finished).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from google.cloud import service_usage_v1

from govctl.emulator import rpc
from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Service
from govctl.emulator.iam.projects import Project, Projects
from govctl.emulator.rpc import Paging, invalid_argument, not_found

# name -> (title, enabled in a new project). Google enables a handful of APIs in every new
# project (logging, monitoring, storage, service usage among those govctl uses); the rest
# must be enabled, which is what `govctl setup` does.
SERVICE_CATALOG: dict[str, tuple[str, bool]] = {
    "artifactregistry.googleapis.com": ("Artifact Registry API", False),
    "cloudbilling.googleapis.com": ("Cloud Billing API", False),
    "cloudbuild.googleapis.com": ("Cloud Build API", False),
    "cloudresourcemanager.googleapis.com": ("Cloud Resource Manager API", False),
    "cloudscheduler.googleapis.com": ("Cloud Scheduler API", False),
    # Still an API a project can enable (the old runbook does): Container Registry is shut
    # down for writes since 2025-03-18 but its API remains for the gcr.io transition
    # (https://cloud.google.com/artifact-registry/docs/transition/setup-gcr-repo).
    "containerregistry.googleapis.com": ("Container Registry API", False),
    "discoveryengine.googleapis.com": ("Discovery Engine API", False),
    "iam.googleapis.com": ("Identity and Access Management (IAM) API", False),
    "logging.googleapis.com": ("Cloud Logging API", True),
    "monitoring.googleapis.com": ("Cloud Monitoring API", True),
    "run.googleapis.com": ("Cloud Run Admin API", False),
    "secretmanager.googleapis.com": ("Secret Manager API", False),
    "serviceusage.googleapis.com": ("Service Usage API", True),
    "storage.googleapis.com": ("Cloud Storage API", True),
}
ENABLED_IN_NEW_PROJECTS = frozenset(name for name, (_, on) in SERVICE_CATALOG.items() if on)
BATCH_ENABLE_MAX = 20
BATCH_GET_MAX = 30
# ListServicesRequest.page_size: "cannot exceed 200 … the default page size is 50".
_PAGING = Paging(default=50, maximum=200)


class ServiceUsageApi:
    def __init__(self, service: Service, projects: Projects) -> None:
        self.svc = service
        self.projects = projects

    def rpcs(self) -> Bound:
        return gapic_api("google.cloud.service_usage_v1.services.service_usage").bind(
            {
                "ListServices": self.list_services,
                "GetService": self.get_service,
                "BatchGetServices": self.batch_get_services,
                "EnableService": self.enable_service,
                "BatchEnableServices": self.batch_enable_services,
                "DisableService": self.disable_service,
            }
        )

    def _service_ref(self, name: str) -> tuple[Project, str]:
        m = re.fullmatch(r"projects/([^/]+)/services/([^/]+)", name)
        if not m:
            raise invalid_argument(
                f"invalid service name {name!r}: want projects/PROJECT/services/SERVICE"
            )
        return self.projects.get(m.group(1)), _catalogued(m.group(2))

    def list_services(self, request: service_usage_v1.ListServicesRequest, context: Any) -> Any:
        wanted = _state_filter(request.filter)
        with self.svc.lock:
            proj = self.projects.get(request.parent)
            services = [_service_pb(proj, name) for name in sorted(SERVICE_CATALOG)]
        services = [s for s in services if wanted is None or s.state == wanted]
        return _PAGING.respond(service_usage_v1.ListServicesResponse, "services", services, request)

    def get_service(self, request: service_usage_v1.GetServiceRequest, context: Any) -> Any:
        with self.svc.lock:
            proj, name = self._service_ref(request.name)
            return _service_pb(proj, name)

    def batch_get_services(
        self, request: service_usage_v1.BatchGetServicesRequest, context: Any
    ) -> Any:
        if len(request.names) > BATCH_GET_MAX:
            raise invalid_argument(f"at most {BATCH_GET_MAX} services can be fetched in one batch")
        with self.svc.lock:
            proj = self.projects.get(request.parent)
            out = []
            for name in request.names:
                p, svc = self._service_ref(name)
                if p is not proj:
                    raise invalid_argument(f"{name} is not in {request.parent}")
                out.append(_service_pb(proj, svc))
        return service_usage_v1.BatchGetServicesResponse(services=out)

    def enable_service(self, request: service_usage_v1.EnableServiceRequest, context: Any) -> Any:
        with self.svc.lock:
            proj, name = self._service_ref(request.name)
            proj.enabled.add(name)
            self.svc.changed()
            svc = _service_pb(proj, name)
        return _finished(service_usage_v1.EnableServiceResponse(service=svc), [svc])

    def batch_enable_services(
        self, request: service_usage_v1.BatchEnableServicesRequest, context: Any
    ) -> Any:
        ids = list(request.service_ids)
        if not ids:
            raise invalid_argument("service_ids must name at least one service")
        if len(ids) > BATCH_ENABLE_MAX:
            raise invalid_argument(
                f"at most {BATCH_ENABLE_MAX} services can be enabled in one batch"
            )
        with self.svc.lock:
            proj = self.projects.get(request.parent)
            # All or nothing, as the real batch is when a service is unknown.
            names = [_catalogued(i) for i in ids]
            proj.enabled.update(names)
            self.svc.changed()
            services = [_service_pb(proj, n) for n in names]
        return _finished(service_usage_v1.BatchEnableServicesResponse(services=services), services)

    def disable_service(self, request: service_usage_v1.DisableServiceRequest, context: Any) -> Any:
        with self.svc.lock:
            proj, name = self._service_ref(request.name)
            proj.enabled.discard(name)
            self.svc.changed()
            svc = _service_pb(proj, name)
        return _finished(service_usage_v1.DisableServiceResponse(service=svc), [svc])


def _catalogued(service: str) -> str:
    if service not in SERVICE_CATALOG:
        raise not_found(f"Not found or permission denied for service(s): {service}.")
    return service


def _service_pb(proj: Project, name: str) -> service_usage_v1.Service:
    title, _ = SERVICE_CATALOG[name]
    state = (
        service_usage_v1.State.ENABLED if name in proj.enabled else service_usage_v1.State.DISABLED
    )
    return service_usage_v1.Service(
        name=f"projects/{proj.number}/services/{name}",
        parent=f"projects/{proj.number}",
        config=service_usage_v1.ServiceConfig(name=name, title=title),
        state=state,
    )


def _finished(response: Any, services: list[service_usage_v1.Service]) -> Any:
    """The finished operation Service Usage answers a change with."""
    metadata = service_usage_v1.OperationMetadata(resource_names=[s.name for s in services])
    return rpc.operation(f"operations/acf.p2-{uuid.uuid4()}", metadata, response)


def _state_filter(text: str) -> Any:
    """``state:ENABLED`` / ``state:DISABLED`` / empty: the filters Service Usage documents."""
    text = text.strip()
    if not text:
        return None
    m = re.fullmatch(r"state\s*:\s*(ENABLED|DISABLED)", text)
    if not m:
        raise invalid_argument(
            f"unsupported filter {text!r}: only state:ENABLED and state:DISABLED are supported"
        )
    return getattr(service_usage_v1.State, m.group(1))
