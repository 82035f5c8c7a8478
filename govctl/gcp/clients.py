"""Every Google client govctl uses is built here, by one :class:`Factory`.

The factory is given where the APIs are (:class:`govctl.config.CloudTarget`, resolved with the
other settings: ``config show`` prints it): a command's settings choose it through
:func:`use`; code that runs without them (tests, scripts) gets the target the environment and
govctl.toml name, resolved the same way. With an emulator target each gRPC client gets an
insecure channel to the loopback cloud (an ``api_endpoint`` alone would open TLS and fail)
and anonymous credentials; otherwise the libraries' defaults apply (Application Default
Credentials). Storage is pointed at fake-gcs-server the same way.

This is the one place where a client is made, so a default deadline or a per-process client
cache belongs in :meth:`Factory.grpc` / :meth:`Factory.storage`.

Google libraries are imported inside the functions: importing them costs ~0.4 s, and
``govctl --help`` must not pay it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from govctl.config import CloudTarget, cloud_target

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

C = TypeVar("C")
# Digests and run reports can be large; gRPC's default 4 MiB receive limit is not enough.
MAX_MESSAGE = 64 * 1024 * 1024
DISCOVERY_ENGINE = "discoveryengine.googleapis.com"


class Factory:
    """Builds clients for one target: Google (the libraries' defaults), or the emulator."""

    def __init__(self, target: CloudTarget) -> None:
        self.target = target

    def grpc(
        self,
        client_cls: Callable[..., C],
        transport_cls: Callable[..., Any],
        endpoint: str | None = None,
    ) -> C:
        """A client of the library's default endpoint, or of ``endpoint`` (a regional one).
        On the emulator the channel carries ``endpoint`` as its authority, as a connection to
        Google would, so the emulator sees which endpoint the client meant."""
        if self.target.emulator is None:
            return (
                client_cls(client_options={"api_endpoint": endpoint}) if endpoint else client_cls()
            )
        import grpc

        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", MAX_MESSAGE)]
        if endpoint:
            options.append(("grpc.default_authority", endpoint))
        channel = grpc.insecure_channel(self.target.emulator, options=options)
        if endpoint:
            return client_cls(transport=transport_cls(host=endpoint, channel=channel))
        return client_cls(transport=transport_cls(channel=channel))

    def storage(self, project: str | None) -> StorageClient:
        from google.cloud.storage import Client

        url = self.target.storage_emulator
        if url is None:
            return Client(project=project)
        # fake-gcs-server takes no credentials: the library sends none to a custom endpoint
        # when told not to authenticate there.
        return Client(
            project=project or "emulator",
            client_options={"api_endpoint": url},
            use_auth_w_custom_endpoint=False,
        )


_chosen: CloudTarget | None = None


def use(target: CloudTarget | None) -> CloudTarget | None:
    """Make ``target`` the one every client is built for (None: resolve it from the
    environment again); returns the previous choice, to restore it."""
    global _chosen
    previous, _chosen = _chosen, target
    return previous


def factory() -> Factory:
    return Factory(_chosen if _chosen is not None else cloud_target())


def emulator_host() -> str | None:
    """HOST:PORT of the loopback cloud the clients talk to, or None for Google."""
    return factory().target.emulator


def jobs() -> run_v2.JobsClient:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

    return factory().grpc(run_v2.JobsClient, JobsGrpcTransport)


def executions() -> run_v2.ExecutionsClient:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport

    return factory().grpc(run_v2.ExecutionsClient, ExecutionsGrpcTransport)


def tasks() -> run_v2.TasksClient:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.tasks.transports import TasksGrpcTransport

    return factory().grpc(run_v2.TasksClient, TasksGrpcTransport)


def scheduler() -> scheduler_v1.CloudSchedulerClient:
    from google.cloud import scheduler_v1
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
        CloudSchedulerGrpcTransport,
    )

    return factory().grpc(scheduler_v1.CloudSchedulerClient, CloudSchedulerGrpcTransport)


def logging() -> LoggingServiceV2Client:
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.logging_v2.services.logging_service_v2.transports import (
        LoggingServiceV2GrpcTransport,
    )

    return factory().grpc(LoggingServiceV2Client, LoggingServiceV2GrpcTransport)


def catalog() -> billing_v1.CloudCatalogClient:
    from google.cloud import billing_v1
    from google.cloud.billing_v1.services.cloud_catalog.transports import CloudCatalogGrpcTransport

    return factory().grpc(billing_v1.CloudCatalogClient, CloudCatalogGrpcTransport)


def billing() -> billing_v1.CloudBillingClient:
    from google.cloud import billing_v1
    from google.cloud.billing_v1.services.cloud_billing.transports import CloudBillingGrpcTransport

    return factory().grpc(billing_v1.CloudBillingClient, CloudBillingGrpcTransport)


def projects() -> resourcemanager_v3.ProjectsClient:
    from google.cloud import resourcemanager_v3
    from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

    return factory().grpc(resourcemanager_v3.ProjectsClient, ProjectsGrpcTransport)


def iam() -> iam_admin_v1.IAMClient:
    from google.cloud import iam_admin_v1
    from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

    return factory().grpc(iam_admin_v1.IAMClient, IAMGrpcTransport)


def service_usage() -> service_usage_v1.ServiceUsageClient:
    from google.cloud import service_usage_v1
    from google.cloud.service_usage_v1.services.service_usage.transports import (
        ServiceUsageGrpcTransport,
    )

    return factory().grpc(service_usage_v1.ServiceUsageClient, ServiceUsageGrpcTransport)


def artifact_registry() -> artifactregistry_v1.ArtifactRegistryClient:
    from google.cloud import artifactregistry_v1
    from google.cloud.artifactregistry_v1.services.artifact_registry.transports import (
        ArtifactRegistryGrpcTransport,
    )

    return factory().grpc(artifactregistry_v1.ArtifactRegistryClient, ArtifactRegistryGrpcTransport)


def cloud_build() -> cloudbuild_v1.CloudBuildClient:
    from google.cloud.devtools import cloudbuild_v1
    from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports import (
        CloudBuildGrpcTransport,
    )

    return factory().grpc(cloudbuild_v1.CloudBuildClient, CloudBuildGrpcTransport)


def alert_policies() -> monitoring_v3.AlertPolicyServiceClient:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.alert_policy_service.transports import (
        AlertPolicyServiceGrpcTransport,
    )

    return factory().grpc(monitoring_v3.AlertPolicyServiceClient, AlertPolicyServiceGrpcTransport)


def notification_channels() -> monitoring_v3.NotificationChannelServiceClient:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
        NotificationChannelServiceGrpcTransport,
    )

    return factory().grpc(
        monitoring_v3.NotificationChannelServiceClient, NotificationChannelServiceGrpcTransport
    )


def discovery_engine_endpoint(location: str) -> str:
    """Vertex AI Search serves a data store in ``us`` or ``eu`` only from
    ``{location}-discoveryengine.googleapis.com`` (Google's import sample,
    cloud.google.com/generative-ai-app-builder/docs/samples/genappbuilder-import-documents-gcs;
    the locations page); the global endpoint refuses it ("Incorrect API endpoint used")."""
    return DISCOVERY_ENGINE if location == "global" else f"{location}-{DISCOVERY_ENGINE}"


def data_stores(location: str = "global") -> discoveryengine_v1.DataStoreServiceClient:
    from google.cloud import discoveryengine_v1 as de
    from google.cloud.discoveryengine_v1.services.data_store_service.transports import (
        DataStoreServiceGrpcTransport,
    )

    return factory().grpc(
        de.DataStoreServiceClient,
        DataStoreServiceGrpcTransport,
        discovery_engine_endpoint(location),
    )


def documents(location: str = "global") -> discoveryengine_v1.DocumentServiceClient:
    from google.cloud import discoveryengine_v1 as de
    from google.cloud.discoveryengine_v1.services.document_service.transports import (
        DocumentServiceGrpcTransport,
    )

    return factory().grpc(
        de.DocumentServiceClient, DocumentServiceGrpcTransport, discovery_engine_endpoint(location)
    )


def search(location: str = "global") -> discoveryengine_v1.SearchServiceClient:
    from google.cloud import discoveryengine_v1 as de
    from google.cloud.discoveryengine_v1.services.search_service.transports import (
        SearchServiceGrpcTransport,
    )

    return factory().grpc(
        de.SearchServiceClient, SearchServiceGrpcTransport, discovery_engine_endpoint(location)
    )


def secret_manager() -> secretmanager_v1.SecretManagerServiceClient:
    from google.cloud import secretmanager_v1
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    return factory().grpc(
        secretmanager_v1.SecretManagerServiceClient, SecretManagerServiceGrpcTransport
    )


def storage_client(project: str | None = None) -> StorageClient:
    return factory().storage(project)
