"""Predefined IAM roles and the one question the loopback cloud asks of a policy.

Each predefined role lists the permissions govctl's commands and the emulated services check,
taken from Google's published role reference (cloud.google.com/iam/docs/roles-permissions/*,
read 2026-11-28). A role here lists its *core* permissions, not every permission Google's
page lists (recommender, monitoring, … are left out). The basic roles (owner, editor, viewer)
cover every service, so they are rules over a permission's name rather than lists.

A role that is neither here nor custom (``projects/P/roles/X``) is refused by SetIamPolicy, as
production refuses a misspelt role; add it here when govctl starts to grant it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from google.iam.v1 import policy_pb2

_RUN_VIEW = frozenset(
    {
        "run.jobs.get",
        "run.jobs.list",
        "run.jobs.getIamPolicy",
        "run.executions.get",
        "run.executions.list",
        "run.tasks.get",
        "run.tasks.list",
        "run.services.get",
        "run.services.list",
        "run.services.getIamPolicy",
        "run.revisions.get",
        "run.revisions.list",
        "run.routes.get",
        "run.routes.list",
        "run.configurations.get",
        "run.configurations.list",
        "run.locations.list",
        "run.operations.get",
        "run.operations.list",
        "resourcemanager.projects.get",
    }
)
_RUN_DEVELOP = _RUN_VIEW | {
    "run.jobs.create",
    "run.jobs.update",
    "run.jobs.delete",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.executions.delete",
    "run.executions.cancel",
    "run.services.create",
    "run.services.update",
    "run.services.delete",
    "run.routes.invoke",
    "run.operations.delete",
}
_STORAGE_OBJECT_VIEW = frozenset(
    {
        "storage.objects.get",
        "storage.objects.list",
        "storage.folders.get",
        "storage.folders.list",
        "storage.managedFolders.get",
        "storage.managedFolders.list",
        "resourcemanager.projects.get",
    }
)
_STORAGE_OBJECT_ADMIN = _STORAGE_OBJECT_VIEW | {
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.update",
    "storage.objects.getIamPolicy",
    "storage.objects.setIamPolicy",
    "storage.objects.restore",
    "storage.multipartUploads.create",
    "storage.multipartUploads.abort",
    "storage.multipartUploads.list",
    "storage.multipartUploads.listParts",
    "storage.folders.create",
    "storage.folders.delete",
    "storage.folders.rename",
}
_LOGGING_VIEW = frozenset(
    {
        "logging.logEntries.list",
        "logging.logs.list",
        "logging.logServices.list",
        "logging.logServiceIndexes.list",
        "logging.buckets.get",
        "logging.buckets.list",
        "logging.views.get",
        "logging.views.list",
        "logging.sinks.get",
        "logging.sinks.list",
        "logging.logMetrics.get",
        "logging.logMetrics.list",
        "logging.exclusions.get",
        "logging.exclusions.list",
        "logging.locations.get",
        "logging.locations.list",
        "logging.queries.listShared",
        "logging.usage.get",
        "resourcemanager.projects.get",
    }
)
_SCHEDULER_VIEW = frozenset(
    {
        "cloudscheduler.jobs.get",
        "cloudscheduler.jobs.list",
        "cloudscheduler.locations.get",
        "cloudscheduler.locations.list",
        "resourcemanager.projects.get",
        "resourcemanager.projects.list",
    }
)
_SERVICE_USAGE_VIEW = frozenset(
    {
        "serviceusage.services.get",
        "serviceusage.services.list",
        "serviceusage.operations.get",
        "serviceusage.operations.list",
        "serviceusage.quotas.get",
        "resourcemanager.projects.get",
    }
)
_DISCOVERY_VIEW = frozenset(
    {
        "discoveryengine.dataStores.get",
        "discoveryengine.dataStores.list",
        "discoveryengine.documents.get",
        "discoveryengine.documents.list",
        "discoveryengine.engines.get",
        "discoveryengine.engines.list",
        "discoveryengine.servingConfigs.search",
        "discoveryengine.operations.get",
        "discoveryengine.operations.list",
    }
)

PREDEFINED: dict[str, frozenset[str]] = {
    # Cloud Run
    "roles/run.viewer": _RUN_VIEW,
    "roles/run.invoker": frozenset({"run.jobs.run", "run.routes.invoke"}),
    # Run a job as it is, or with overrides (args, env, task count, timeout).
    "roles/run.jobsExecutor": frozenset(
        {"run.jobs.run", "run.jobs.get", "run.executions.get", "run.executions.list"}
    ),
    "roles/run.jobsExecutorWithOverrides": frozenset(
        {
            "run.jobs.run",
            "run.jobs.runWithOverrides",
            "run.jobs.get",
            "run.executions.get",
            "run.executions.list",
        }
    ),
    "roles/run.developer": frozenset(_RUN_DEVELOP),
    "roles/run.admin": frozenset(
        _RUN_DEVELOP | {"run.jobs.setIamPolicy", "run.services.setIamPolicy"}
    ),
    # IAM
    "roles/iam.serviceAccountUser": frozenset(
        {
            "iam.serviceAccounts.actAs",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    "roles/iam.serviceAccountAdmin": frozenset(
        {
            "iam.serviceAccounts.create",
            "iam.serviceAccounts.delete",
            "iam.serviceAccounts.disable",
            "iam.serviceAccounts.enable",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.getIamPolicy",
            "iam.serviceAccounts.list",
            "iam.serviceAccounts.setIamPolicy",
            "iam.serviceAccounts.undelete",
            "iam.serviceAccounts.update",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    "roles/iam.serviceAccountTokenCreator": frozenset(
        {
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.getAccessToken",
            "iam.serviceAccounts.getOpenIdToken",
            "iam.serviceAccounts.implicitDelegation",
            "iam.serviceAccounts.signBlob",
            "iam.serviceAccounts.signJwt",
            "resourcemanager.projects.get",
        }
    ),
    "roles/resourcemanager.projectIamAdmin": frozenset(
        {
            "resourcemanager.projects.get",
            "resourcemanager.projects.getIamPolicy",
            "resourcemanager.projects.setIamPolicy",
        }
    ),
    # Cloud Storage
    "roles/storage.objectViewer": _STORAGE_OBJECT_VIEW,
    "roles/storage.objectCreator": frozenset(
        {
            "storage.objects.create",
            "storage.folders.create",
            "storage.managedFolders.create",
            "storage.multipartUploads.create",
            "storage.multipartUploads.abort",
            "storage.multipartUploads.listParts",
        }
    ),
    "roles/storage.objectUser": frozenset(
        _STORAGE_OBJECT_ADMIN - {"storage.objects.getIamPolicy", "storage.objects.setIamPolicy"}
    ),
    "roles/storage.objectAdmin": frozenset(_STORAGE_OBJECT_ADMIN),
    "roles/storage.admin": frozenset(
        _STORAGE_OBJECT_ADMIN
        | {
            "storage.buckets.create",
            "storage.buckets.delete",
            "storage.buckets.get",
            "storage.buckets.getIamPolicy",
            "storage.buckets.list",
            "storage.buckets.setIamPolicy",
            "storage.buckets.update",
        }
    ),
    # Cloud Logging
    "roles/logging.viewer": _LOGGING_VIEW,
    "roles/logging.logWriter": frozenset({"logging.logEntries.create", "logging.logEntries.route"}),
    "roles/logging.admin": frozenset(
        _LOGGING_VIEW
        | {
            "logging.logEntries.create",
            "logging.logEntries.route",
            "logging.logs.delete",
            "logging.privateLogEntries.list",
            "logging.sinks.create",
            "logging.sinks.delete",
            "logging.sinks.update",
            "logging.logMetrics.create",
            "logging.logMetrics.delete",
            "logging.logMetrics.update",
            "logging.buckets.create",
            "logging.buckets.delete",
            "logging.buckets.update",
        }
    ),
    # Cloud Scheduler
    "roles/cloudscheduler.viewer": _SCHEDULER_VIEW,
    # Held by Cloud Scheduler's service agent (core of Google's list: it mints the tokens
    # that scheduler jobs send).
    "roles/cloudscheduler.serviceAgent": frozenset(
        {
            "iam.serviceAccounts.actAs",
            "iam.serviceAccounts.getAccessToken",
            "iam.serviceAccounts.getOpenIdToken",
            "logging.logEntries.create",
            "pubsub.topics.publish",
        }
    ),
    "roles/cloudscheduler.jobRunner": frozenset({"cloudscheduler.jobs.run"}),
    "roles/cloudscheduler.admin": frozenset(
        _SCHEDULER_VIEW
        | {
            "cloudscheduler.jobs.create",
            "cloudscheduler.jobs.delete",
            "cloudscheduler.jobs.enable",
            "cloudscheduler.jobs.fullAccessWithoutIamPolicy",
            "cloudscheduler.jobs.pause",
            "cloudscheduler.jobs.run",
            "cloudscheduler.jobs.update",
        }
    ),
    # Service Usage
    "roles/serviceusage.serviceUsageViewer": _SERVICE_USAGE_VIEW,
    "roles/serviceusage.serviceUsageConsumer": frozenset(
        {
            "serviceusage.services.get",
            "serviceusage.services.list",
            "serviceusage.services.use",
            "serviceusage.quotas.get",
            "resourcemanager.projects.get",
        }
    ),
    "roles/serviceusage.serviceUsageAdmin": frozenset(
        _SERVICE_USAGE_VIEW
        | {
            "serviceusage.services.enable",
            "serviceusage.services.disable",
            "serviceusage.services.use",
            "serviceusage.quotas.update",
        }
    ),
    # Artifact Registry, Cloud Build (images), Vertex AI Search (the index)
    "roles/artifactregistry.reader": frozenset(
        {
            "artifactregistry.repositories.downloadArtifacts",
            "artifactregistry.repositories.get",
            "artifactregistry.repositories.list",
            "artifactregistry.dockerimages.get",
            "artifactregistry.dockerimages.list",
            "artifactregistry.tags.get",
            "artifactregistry.tags.list",
            "artifactregistry.versions.get",
            "artifactregistry.versions.list",
        }
    ),
    "roles/artifactregistry.writer": frozenset(
        {
            "artifactregistry.repositories.downloadArtifacts",
            "artifactregistry.repositories.uploadArtifacts",
            "artifactregistry.repositories.get",
            "artifactregistry.repositories.list",
            "artifactregistry.dockerimages.get",
            "artifactregistry.dockerimages.list",
            "artifactregistry.tags.create",
            "artifactregistry.tags.get",
            "artifactregistry.tags.list",
            "artifactregistry.tags.update",
            "artifactregistry.versions.get",
            "artifactregistry.versions.list",
        }
    ),
    "roles/cloudbuild.builds.editor": frozenset(
        {
            "cloudbuild.builds.create",
            "cloudbuild.builds.get",
            "cloudbuild.builds.list",
            "cloudbuild.builds.update",
            "resourcemanager.projects.get",
        }
    ),
    "roles/discoveryengine.viewer": _DISCOVERY_VIEW,
    "roles/discoveryengine.editor": frozenset(
        _DISCOVERY_VIEW
        | {
            "discoveryengine.dataStores.create",
            "discoveryengine.dataStores.update",
            "discoveryengine.dataStores.delete",
            "discoveryengine.documents.create",
            "discoveryengine.documents.update",
            "discoveryengine.documents.delete",
            "discoveryengine.documents.import",
        }
    ),
    "roles/secretmanager.secretAccessor": frozenset({"secretmanager.versions.access"}),
}

BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")

# What roles/editor lacks: changing who has access, and deleting or moving the project.
_EDITOR_DENIED = re.compile(
    r"(\.setIamPolicy$|^iam\.roles\.|^resourcemanager\.projects\.(delete|move|undelete)$)"
)
_READ_VERBS = frozenset({"get", "list", "getIamPolicy"})

PERMISSION_RE = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+){2,}$")
CUSTOM_ROLE_RE = re.compile(r"^(projects|organizations)/[^/]+/roles/[a-zA-Z0-9_.]{3,64}$")


def is_known_role(role: str) -> bool:
    return role in BASIC_ROLES or role in PREDEFINED or bool(CUSTOM_ROLE_RE.fullmatch(role))


def role_grants(role: str, permission: str) -> bool:
    """Whether ``role`` contains ``permission`` (custom roles grant nothing here)."""
    if role == "roles/owner":
        return True
    if role == "roles/editor":
        return not _EDITOR_DENIED.search(permission)
    if role == "roles/viewer":
        return permission.rsplit(".", 1)[-1] in _READ_VERBS
    return permission in PREDEFINED.get(role, frozenset())


def normalize_member(member: str) -> str:
    """IAM compares the email part of a principal case-insensitively."""
    kind, sep, rest = member.partition(":")
    return f"{kind}:{rest.lower()}" if sep and "@" in rest else member


def _covers(members: Iterable[str], member: str) -> bool:
    wanted = normalize_member(member)
    for m in members:
        if m == "allUsers" or (m == "allAuthenticatedUsers" and member != "allUsers"):
            return True
        if normalize_member(m) == wanted:
            return True
    return False


def allows(policy: policy_pb2.Policy, member: str, permission: str) -> bool:
    """Whether a binding of ``policy`` grants ``permission`` to ``member``.

    Conditional bindings grant nothing: the emulator does not evaluate CEL, and a grant that
    only holds under a condition must not let an attempt through that production might refuse.
    """
    for binding in policy.bindings:
        if binding.HasField("condition") and binding.condition.expression:
            continue
        if _covers(binding.members, member) and role_grants(binding.role, permission):
            return True
    return False
