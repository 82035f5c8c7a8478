"""Which Google API a served RPC belongs to, and which project a request is made for: what
the emulator needs to refuse a call to an API that is disabled in that project.

**The API.** Each gRPC service is part of one API, named as Service Usage names it
(``run.googleapis.com``): the ``name`` of the API's service configuration in googleapis
(``google/cloud/run/v2/run_v2.yaml`` → ``name: run.googleapis.com``), recorded for every
served service as its ``host`` in ``data/http_rules.json`` by ``scripts/http_rules.py``.
``google.longrunning.Operations`` belongs to no one API here (one server answers every API's
operations), so it is not gated.

**The project.** Google checks the *consumer* project: "typically … a Google project that owns
the client application or the server resource" (googleapis ``google/api/error_reason.proto``).
Which one depends on the API (https://cloud.google.com/docs/quotas/quota-project):

- a *resource-based* API charges "the project that contains the resource that is being
  accessed", whoever calls: the emulator takes the first ``projects/P`` that a name field
  (``name``, ``parent``, ``resource``, ``log_name`` …) starts with, or a ``project_id`` field
  (Cloud Build). A request that names no project (the Billing Catalog's ``services/…``) is not
  gated;
- a *client-based* API charges the caller's quota project: the one "specified in request"
  (the ``x-goog-user-project`` header a client library sends for ADC's ``quota_project_id``),
  else gcloud's shared project for a gcloud user, else the service account's. Clients of the
  emulator carry no credentials, so only the header names one; without it the call is
  charged to no project of the emulator's and is not gated (as gcloud's shared project lets a
  user's ``gcloud projects describe`` through). Google lists no API by kind; Resource Manager
  is named non-resource-oriented by a Google engineer
  (https://jpassing.com/2022/10/31/which-project-quota-are-my-api-calls-charged-against/),
  and Cloud Billing is treated alike here (its accounts live in no project): a judgement.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

from google.protobuf import descriptor
from google.protobuf.message import Message

CLIENT_BASED = frozenset({"cloudresourcemanager.googleapis.com", "cloudbilling.googleapis.com"})
USER_PROJECT = "x-goog-user-project"
_PROJECT = re.compile(r"projects/([^/]+)")
_ID_FIELDS = frozenset({"project_id", "project"})
# Deep enough for WriteLogEntries' entries[0].log_name; a request never nests its project
# further in the APIs the emulator serves.
_DEPTH = 2


@functools.cache
def _hosts() -> dict[str, str]:
    text = resources.files("govctl.emulator").joinpath("data/http_rules.json").read_text()
    services = json.loads(text)["services"]
    return {name: str(data["host"]) for name, data in services.items()}


def api_of(service: str) -> str | None:
    """The API (``run.googleapis.com``) of a gRPC service (``google.cloud.run.v2.Jobs``)."""
    return _hosts().get(service)


def consumer(api: str, request: Message, metadata: object) -> str | None:
    """The project (id or number, as named) whose enabled APIs decide a call to ``api``:
    the quota project of a client-based API (``metadata``: the call's invocation metadata),
    else the project the raw ``request`` names; None when there is none to check."""
    if api in CLIENT_BASED:
        return user_project(metadata)
    return project_of(request)


def user_project(metadata: object) -> str | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if str(key).lower() == USER_PROJECT and value:
            return value if isinstance(value, str) else bytes(value).decode()
    return None


def project_of(request: Message) -> str | None:
    """The project (id or number, as named) a raw request is made for, if it names one."""
    return _scan(request, _DEPTH)


def _strings(field: descriptor.FieldDescriptor, value: object) -> list[str]:
    if field.is_repeated:
        return [str(v) for v in value]  # type: ignore[attr-defined]
    return [str(value)]


def _scan(msg: Message, depth: int) -> str | None:
    for field, value in msg.ListFields():
        if field.type == descriptor.FieldDescriptor.TYPE_STRING:
            found = _in_strings(field, _strings(field, value))
        elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE and depth > 0:
            found = _in_message(field, value, depth)
        else:
            found = None
        if found:
            return found
    return None


def _in_strings(field: descriptor.FieldDescriptor, values: list[str]) -> str | None:
    for text in values:
        if field.name in _ID_FIELDS and text and "/" not in text:
            return text
        m = _PROJECT.match(text)
        if m and m.group(1) != "-":  # projects/-: "any project" (IAM), names none
            return m.group(1)
    return None


def _in_message(field: descriptor.FieldDescriptor, value: object, depth: int) -> str | None:
    if field.message_type.GetOptions().map_entry:
        return None  # labels and the like name no resource
    if field.is_repeated:
        items = list(value)  # type: ignore[call-overload]
        return _scan(items[0], depth - 1) if items else None
    assert isinstance(value, Message)
    return _scan(value, depth - 1)
