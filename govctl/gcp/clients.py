"""Every Google client govctl uses is built here.

With ``GOVCTL_EMULATOR_HOST=127.0.0.1:P`` each gRPC client gets an insecure channel to the
loopback cloud (an ``api_endpoint`` alone would open TLS and fail) and anonymous
credentials; otherwise the libraries' defaults apply (Application Default Credentials).
Storage follows ``STORAGE_EMULATOR_HOST``, which the storage library honours itself.

Google libraries are imported inside the functions: importing them costs ~0.4 s, and
``govctl --help`` must not pay it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import (
        artifactregistry_v1,
        billing_v1,
        discoveryengine_v1,
        iam_admin_v1,
        monitoring_v3,
        resourcemanager_v3,
        run_v2,
        scheduler_v1,
        secretmanager_v1,
        service_usage_v1,
    )
    from google.cloud.devtools import cloudbuild_v1
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.storage import Client as StorageClient

EMULATOR_ENV = "GOVCTL_EMULATOR_HOST"


def emulator_host() -> str | None:
    return os.environ.get(EMULATOR_ENV) or None


def _build(client_cls: Any, transport_cls: Any) -> Any:
    host = emulator_host()
    if host is None:
        return client_cls()
    import grpc

    channel = grpc.insecure_channel(
        host,
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    return client_cls(transport=transport_cls(channel=channel))


def jobs() -> run_v2.JobsClient:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

    return _build(run_v2.JobsClient, JobsGrpcTransport)  # type: ignore[no-any-return]


def executions() -> run_v2.ExecutionsClient:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport

    return _build(run_v2.ExecutionsClient, ExecutionsGrpcTransport)  # type: ignore[no-any-return]


def tasks() -> run_v2.TasksClient:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.tasks.transports import TasksGrpcTransport

    return _build(run_v2.TasksClient, TasksGrpcTransport)  # type: ignore[no-any-return]


def scheduler() -> scheduler_v1.CloudSchedulerClient:
    from google.cloud import scheduler_v1
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
        CloudSchedulerGrpcTransport,
    )

    return _build(scheduler_v1.CloudSchedulerClient, CloudSchedulerGrpcTransport)  # type: ignore[no-any-return]


def logging() -> LoggingServiceV2Client:
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.logging_v2.services.logging_service_v2.transports import (
        LoggingServiceV2GrpcTransport,
    )

    return _build(LoggingServiceV2Client, LoggingServiceV2GrpcTransport)  # type: ignore[no-any-return]


def catalog() -> billing_v1.CloudCatalogClient:
    from google.cloud import billing_v1
    from google.cloud.billing_v1.services.cloud_catalog.transports import CloudCatalogGrpcTransport

    return _build(billing_v1.CloudCatalogClient, CloudCatalogGrpcTransport)  # type: ignore[no-any-return]


def billing() -> billing_v1.CloudBillingClient:
    from google.cloud import billing_v1
    from google.cloud.billing_v1.services.cloud_billing.transports import CloudBillingGrpcTransport

    return _build(billing_v1.CloudBillingClient, CloudBillingGrpcTransport)  # type: ignore[no-any-return]


def projects() -> resourcemanager_v3.ProjectsClient:
    from google.cloud import resourcemanager_v3
    from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

    return _build(resourcemanager_v3.ProjectsClient, ProjectsGrpcTransport)  # type: ignore[no-any-return]


def iam() -> iam_admin_v1.IAMClient:
    from google.cloud import iam_admin_v1
    from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

    return _build(iam_admin_v1.IAMClient, IAMGrpcTransport)  # type: ignore[no-any-return]


def service_usage() -> service_usage_v1.ServiceUsageClient:
    from google.cloud import service_usage_v1
    from google.cloud.service_usage_v1.services.service_usage.transports import (
        ServiceUsageGrpcTransport,
    )

    return _build(service_usage_v1.ServiceUsageClient, ServiceUsageGrpcTransport)  # type: ignore[no-any-return]


def artifact_registry() -> artifactregistry_v1.ArtifactRegistryClient:
    from google.cloud import artifactregistry_v1
    from google.cloud.artifactregistry_v1.services.artifact_registry.transports import (
        ArtifactRegistryGrpcTransport,
    )

    return _build(artifactregistry_v1.ArtifactRegistryClient, ArtifactRegistryGrpcTransport)  # type: ignore[no-any-return]


def cloud_build() -> cloudbuild_v1.CloudBuildClient:
    from google.cloud.devtools import cloudbuild_v1
    from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports import (
        CloudBuildGrpcTransport,
    )

    return _build(cloudbuild_v1.CloudBuildClient, CloudBuildGrpcTransport)  # type: ignore[no-any-return]


def alert_policies() -> monitoring_v3.AlertPolicyServiceClient:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.alert_policy_service.transports import (
        AlertPolicyServiceGrpcTransport,
    )

    return _build(monitoring_v3.AlertPolicyServiceClient, AlertPolicyServiceGrpcTransport)  # type: ignore[no-any-return]


def notification_channels() -> monitoring_v3.NotificationChannelServiceClient:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
        NotificationChannelServiceGrpcTransport,
    )

    return _build(  # type: ignore[no-any-return]
        monitoring_v3.NotificationChannelServiceClient, NotificationChannelServiceGrpcTransport
    )


def data_stores() -> discoveryengine_v1.DataStoreServiceClient:
    from google.cloud import discoveryengine_v1 as de
    from google.cloud.discoveryengine_v1.services.data_store_service.transports import (
        DataStoreServiceGrpcTransport,
    )

    return _build(de.DataStoreServiceClient, DataStoreServiceGrpcTransport)  # type: ignore[no-any-return]


def documents() -> discoveryengine_v1.DocumentServiceClient:
    from google.cloud import discoveryengine_v1 as de
    from google.cloud.discoveryengine_v1.services.document_service.transports import (
        DocumentServiceGrpcTransport,
    )

    return _build(de.DocumentServiceClient, DocumentServiceGrpcTransport)  # type: ignore[no-any-return]


def search() -> discoveryengine_v1.SearchServiceClient:
    from google.cloud import discoveryengine_v1 as de
    from google.cloud.discoveryengine_v1.services.search_service.transports import (
        SearchServiceGrpcTransport,
    )

    return _build(de.SearchServiceClient, SearchServiceGrpcTransport)  # type: ignore[no-any-return]


def secret_manager() -> secretmanager_v1.SecretManagerServiceClient:
    from google.cloud import secretmanager_v1
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    return _build(  # type: ignore[no-any-return]
        secretmanager_v1.SecretManagerServiceClient, SecretManagerServiceGrpcTransport
    )


def storage_client(project: str | None = None) -> StorageClient:
    from google.cloud.storage import Client

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return Client(project=project or "emulator", credentials=AnonymousCredentials())
    return Client(project=project)
