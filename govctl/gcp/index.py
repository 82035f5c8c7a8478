"""The Vertex AI Search data store that indexes the bucket (Discovery Engine v1).

Names: the data store is ``projects/P/locations/L/collections/default_collection/dataStores/D``;
its one branch ``…/branches/0`` holds the documents and the import operations; searches go
through its serving config ``…/servingConfigs/default_search``. A data store outside ``global``
is reached through its regional endpoint (:func:`govctl.gcp.clients.discovery_engine_endpoint`),
read here from the location in its name.

Documents come from a JSONL manifest in the bucket (``GcsSource.data_schema`` ``document``: one
``Document`` a line, each with its own id, ``structData`` and ``content``), written by
``govctl index sync``; a search result names its repository by the document's
``structData.repository``, else by its Cloud Storage link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from govctl.gcp import clients, operations
from govctl.gcp.errors import translate

COLLECTION = "default_collection"
BRANCH = "0"
SERVING_CONFIG = "default_search"
IMPORT_OP = "/operations/import-documents-"
CREATE_FIX = "create it with `govctl index create`"


def store_path(project: str, location: str, data_store: str) -> str:
    collection = f"projects/{project}/locations/{location}/collections/{COLLECTION}"
    return f"{collection}/dataStores/{data_store}"


def store_id(path: str) -> str:
    """The data store's id in its resource name (the client library's parser)."""
    from google.cloud import discoveryengine_v1 as de

    return de.DataStoreServiceClient.parse_data_store_path(path).get("data_store", path)


def branch_path(store: str) -> str:
    return f"{store}/branches/{BRANCH}"


def location(path: str) -> str:
    """The location in a data store's (or a name under it) resource name."""
    parts = path.split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "locations" else "global"


# PurgeDocumentsRequest.InlineSource.documents: "Recommended max of 100 items".
PURGE_BATCH = 100


@dataclass(frozen=True)
class DataStore:
    name: str
    display_name: str
    content_config: str
    created: datetime | None


@dataclass(frozen=True)
class ImportRun:
    name: str
    state: str  # running | succeeded | failed
    started: datetime | None
    updated: datetime | None
    success_count: int
    failure_count: int
    total_count: int
    errors: tuple[str, ...]  # the operation's error, then the service's error samples

    @property
    def done(self) -> bool:
        return self.state != "running"


@dataclass(frozen=True)
class Hit:
    id: str
    repository: str  # owner/name: the document's structData, else its Cloud Storage link
    link: str
    snippet: str
    part: int = 1  # of a digest indexed in several parts
    parts: int = 1


@dataclass(frozen=True)
class Purged:
    """What PurgeDocuments did with the names it was given."""

    purged: int
    ignored: int  # not found
    failed: int


def _time(ts: Any) -> datetime | None:
    return ts if isinstance(ts, datetime) and ts.timestamp() > 0 else None


def _data_store(store: Any) -> DataStore:
    return DataStore(
        name=store.name,
        display_name=store.display_name,
        content_config=store.content_config.name,
        created=_time(store.create_time),
    )


def get_data_store(path: str) -> DataStore | None:
    """The data store; None when it does not exist."""
    from google.api_core import exceptions as gexc

    with translate(f"read data store {store_id(path)}"):
        try:
            return _data_store(clients.data_stores(location(path)).get_data_store(name=path))
        except gexc.NotFound:
            return None


def create_data_store(path: str, display_name: str) -> DataStore:
    """Create a search data store for unstructured documents; wait for the operation."""
    from google.cloud import discoveryengine_v1 as de

    parent, _, store_id = path.rpartition("/dataStores/")
    store = de.DataStore(
        display_name=display_name,
        industry_vertical=de.IndustryVertical.GENERIC,
        solution_types=[de.SolutionType.SOLUTION_TYPE_SEARCH],
        content_config=de.DataStore.ContentConfig.CONTENT_REQUIRED,
    )
    with translate(
        f"create data store {store_id}",
        denied="creating a data store needs roles/discoveryengine.admin, and the "
        "discoveryengine.googleapis.com API enabled",
    ):
        op = clients.data_stores(location(path)).create_data_store(
            parent=parent, data_store=store, data_store_id=store_id
        )
        return _data_store(operations.result(op))


# Google: "Deletion is an asynchronous process that can take days. You can't reuse a data store
# ID until the original data store is completely deleted" (cloud.google.com/generative-ai-app-
# builder/docs/delete-a-data-store). Waited for this long, then left to finish on its own.
DELETE_WAIT_S = 120.0


def delete_data_store(path: str) -> bool:
    """Start deleting the data store and its documents; True when the operation finished
    within :data:`DELETE_WAIT_S`, False when Google goes on with it. NotFound when it is gone
    already (DeleteDataStoreRequest: "If the DataStore to delete does not exist, a NOT_FOUND
    error is returned")."""
    from concurrent.futures import TimeoutError as Pending

    with translate(
        f"delete data store {store_id(path)}",
        denied="deleting a data store needs roles/discoveryengine.admin",
    ):
        op = clients.data_stores().delete_data_store(name=path)
        try:
            operations.result(op, timeout=DELETE_WAIT_S)
        except Pending:
            return False
    return True


def count_documents(path: str) -> int:
    """The documents in the data store's branch (ListDocuments, 1,000 a page)."""
    from google.cloud import discoveryengine_v1 as de

    with translate(f"list the documents of {store_id(path)}", not_found=CREATE_FIX):
        pages = clients.documents(location(path)).list_documents(
            request=de.ListDocumentsRequest(parent=branch_path(path), page_size=1000)
        )
        return sum(len(page.documents) for page in pages.pages)


def _import_run(op: Any) -> ImportRun:
    from google.cloud import discoveryengine_v1 as de

    meta = de.ImportDocumentsMetadata.deserialize(op.metadata.value)
    errors: list[str] = []
    if op.HasField("error"):
        errors.append(op.error.message)
    if op.HasField("response"):
        response = de.ImportDocumentsResponse.deserialize(op.response.value)
        errors += [s.message for s in response.error_samples]
    state = "running" if not op.done else "failed" if op.HasField("error") else "succeeded"
    return ImportRun(
        name=op.name,
        state=state,
        started=_time(meta.create_time),
        updated=_time(meta.update_time),
        success_count=int(meta.success_count),
        failure_count=int(meta.failure_count),
        total_count=int(meta.total_count),
        errors=tuple(errors),
    )


def imports(path: str) -> list[ImportRun]:
    """The data store's document imports, newest first."""
    from google.longrunning import operations_pb2

    found: list[ImportRun] = []
    with translate(f"list the imports of {store_id(path)}", not_found=CREATE_FIX):
        client = clients.documents(location(path))
        token = ""
        while True:
            page = client.list_operations(
                request=operations_pb2.ListOperationsRequest(
                    name=branch_path(path), page_size=100, page_token=token
                )
            )
            found += [_import_run(op) for op in page.operations if IMPORT_OP in op.name]
            token = page.next_page_token
            if not token:
                break
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda r: r.started or never, reverse=True)


def start_import(path: str, manifest: str) -> ImportRun:
    """An INCREMENTAL import of the documents listed in the JSONL file ``manifest``
    (``gs://…``; ``data_schema`` ``document``): each is created or replaced, none is deleted.
    Returns at once; follow it with :func:`get_import`."""
    from google.cloud import discoveryengine_v1 as de

    request = de.ImportDocumentsRequest(
        parent=branch_path(path),
        gcs_source=de.GcsSource(input_uris=[manifest], data_schema="document"),
        reconciliation_mode=de.ImportDocumentsRequest.ReconciliationMode.INCREMENTAL,
    )
    with translate(
        f"import {manifest} into {store_id(path)}",
        not_found=CREATE_FIX,
        denied="importing needs roles/discoveryengine.editor (and, for a bucket in another "
        "project, roles/storage.objectViewer on it for the Discovery Engine service agent)",
    ):
        operation = clients.documents(location(path)).import_documents(request=request)
        return _import_run(operation.operation)


def get_import(name: str) -> ImportRun:
    from google.longrunning import operations_pb2

    # An operation's name has no parser in the client library: its id is the last segment.
    with translate(f"read import {name.rpartition('/')[2]}"):
        op = clients.documents(location(name)).get_operation(
            request=operations_pb2.GetOperationRequest(name=name)
        )
    return _import_run(op)


def _repository(link: str) -> str:
    """``gs://bucket/owner/name.md`` or ``gs://bucket/_index/parts/owner/name/2.txt`` →
    ``owner/name``."""
    path = link.removeprefix("gs://").partition("/")[2]
    if path.startswith("_index/parts/"):
        return path.removeprefix("_index/parts/").rpartition("/")[0]
    return path.removesuffix(".md")


def search(path: str, query: str, limit: int) -> tuple[list[Hit], int]:
    """The top ``limit`` results of ``query`` with a snippet each, and the total matched."""
    from google.cloud import discoveryengine_v1 as de

    request = de.SearchRequest(
        serving_config=f"{path}/servingConfigs/{SERVING_CONFIG}",
        query=query,
        page_size=limit,
        content_search_spec=de.SearchRequest.ContentSearchSpec(
            snippet_spec=de.SearchRequest.ContentSearchSpec.SnippetSpec(return_snippet=True)
        ),
    )
    with translate(f"search {store_id(path)}", not_found=CREATE_FIX):
        response = clients.search(location(path)).search(request=request)
        page = next(iter(response.pages))
    return [_hit(result) for result in page.results[:limit]], int(page.total_size)


def _hit(result: Any) -> Hit:
    import html
    import re

    from google.cloud import discoveryengine_v1 as de
    from google.protobuf import json_format
    from google.protobuf.message import Message

    doc = result.document
    # The pager's pages may hold raw protobuf messages or proto-plus ones.
    raw = doc if isinstance(doc, Message) else de.Document.pb(doc)
    data = json_format.MessageToDict(raw.derived_struct_data)
    meta = json_format.MessageToDict(raw.struct_data)
    link = str(data.get("link") or "")
    snippets = data.get("snippets") or []
    text = str(snippets[0].get("snippet", "")) if snippets else ""
    repository = meta.get("repository") or (_repository(link) if link else result.id)
    return Hit(
        id=result.id,
        repository=str(repository),
        link=link,
        # Snippets are HTML with the matched words in <b>…</b>: shown as plain text.
        snippet=html.unescape(re.sub(r"</?b>", "", text)),
        part=_count(meta.get("part")),
        parts=_count(meta.get("parts")),
    )


def _count(value: Any) -> int:
    """A part number of structData (a JSON number arrives as a float); 1 when absent."""
    return int(value) if isinstance(value, int | float) and value >= 1 else 1


def document_ids(path: str) -> list[str]:
    """Every document id in the data store (ListDocuments, 1,000 a page)."""
    from google.cloud import discoveryengine_v1 as de

    with translate(f"list the documents of {store_id(path)}", not_found=CREATE_FIX):
        pages = clients.documents(location(path)).list_documents(
            request=de.ListDocumentsRequest(parent=branch_path(path), page_size=1000)
        )
        return [d.id for page in pages.pages for d in page.documents]


def purge(path: str, ids: list[str]) -> Purged:
    """Delete the documents ``ids``: PurgeDocuments with ``filter`` ``*`` and their names
    inline, a hundred a request (purge_config.proto), each followed to its end."""
    from google.cloud import discoveryengine_v1 as de

    purged = ignored = failed = 0
    client = clients.documents(location(path))
    with translate(
        f"purge documents of {store_id(path)}",
        not_found=CREATE_FIX,
        denied="removing documents needs roles/discoveryengine.editor",
    ):
        for start in range(0, len(ids), PURGE_BATCH):
            names = [f"{branch_path(path)}/documents/{i}" for i in ids[start : start + PURGE_BATCH]]
            op = client.purge_documents(
                request=de.PurgeDocumentsRequest(
                    parent=branch_path(path),
                    filter="*",
                    inline_source=de.PurgeDocumentsRequest.InlineSource(documents=names),
                    force=True,
                )
            )
            operations.result(op)
            meta = de.PurgeDocumentsMetadata.pb(op.metadata)
            purged += int(meta.success_count)
            ignored += int(meta.ignored_count)
            failed += int(meta.failure_count)
    return Purged(purged, ignored, failed)


def digests_newer_than(project: str, bucket: str, since: datetime | None) -> tuple[int, int]:
    """(digests in the bucket, how many were written after ``since``); one listing.

    A digest's time is its object's update time (what an import sees), or its processedAt
    metadata when the listing has no update time. ``since=None`` counts every digest as newer.
    """
    with translate(f"list gs://{bucket}", not_found="create it with `govctl setup`"):
        client = clients.storage_client(project)
        total = newer = 0
        for blob in client.list_blobs(bucket, fields="items(name,updated,metadata),nextPageToken"):
            if blob.name.startswith("_") or not blob.name.endswith(".md"):
                continue
            total += 1
            at = blob.updated or _processed_at(blob.metadata)
            if since is None or at is None or at > since:
                newer += 1
    return total, newer


def _processed_at(metadata: dict[str, str] | None) -> datetime | None:
    try:
        return datetime.fromisoformat((metadata or {})["processedAt"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
