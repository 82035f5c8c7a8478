"""Discovery Engine v1 in the loopback cloud, through the official clients."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.cloud import discoveryengine_v1 as de
from google.cloud import run_v2

from govctl.emulator.server import Emulator
from govctl.gcp import clients

COLLECTION = "projects/p/locations/global/collections/default_collection"
STORE = f"{COLLECTION}/dataStores/ds"
BRANCH = f"{STORE}/branches/0"
BUCKET = "digests"
CONTENT = de.DataStore.ContentConfig.CONTENT_REQUIRED


def _create(store_id: str = "ds", content: int = CONTENT) -> de.DataStore:
    op = clients.data_stores().create_data_store(
        parent=COLLECTION,
        data_store=de.DataStore(display_name="digests", content_config=content),
        data_store_id=store_id,
    )
    return op.result(timeout=10)


def _put(name: str, body: str | bytes, content_type: str = "text/markdown; charset=utf-8") -> None:
    bucket = clients.storage_client("p").bucket(BUCKET)
    bucket.blob(name).upload_from_string(body, content_type=content_type)


def _import(uri: str = f"gs://{BUCKET}/*/*.md", mode: str = "INCREMENTAL") -> tuple:
    op = clients.documents().import_documents(
        request=de.ImportDocumentsRequest(
            parent=f"{STORE}/branches/default_branch",
            gcs_source=de.GcsSource(input_uris=[uri], data_schema="content"),
            reconciliation_mode=mode,
        )
    )
    response = op.result(timeout=20)
    return op, response


def _ids() -> set[str]:
    return {d.id for d in clients.documents().list_documents(parent=BRANCH)}


def _search(query: str, size: int = 10) -> de.SearchResponse:
    return clients.search().search(
        request=de.SearchRequest(
            serving_config=f"{STORE}/servingConfigs/default_search",
            query=query,
            page_size=size,
            content_search_spec={"snippet_spec": {"return_snippet": True}},
        )
    )


@pytest.fixture
def store(emulator: Emulator) -> de.DataStore:
    clients.storage_client("p").create_bucket(BUCKET)
    return _create()


def test_data_store_lifecycle(emulator: Emulator) -> None:
    created = _create()
    assert created.name == STORE
    assert created.content_config == CONTENT
    assert created.solution_types == [de.SolutionType.SOLUTION_TYPE_SEARCH]
    assert clients.data_stores().get_data_store(name=STORE).display_name == "digests"
    with pytest.raises(gexc.AlreadyExists):
        _create()
    with pytest.raises(gexc.InvalidArgument, match="data_store_id"):
        _create("Bad Id")
    listed = [s.name for s in clients.data_stores().list_data_stores(parent=COLLECTION)]
    assert listed == [STORE]
    clients.data_stores().delete_data_store(name=STORE).result(timeout=10)
    with pytest.raises(gexc.NotFound):
        clients.data_stores().get_data_store(name=STORE)


def test_import_counts_ids_and_error_samples(store: de.DataStore) -> None:
    _put("alphagov/frontend.md", "# frontend\nRenders GOV.UK pages for the zebrafish team.")
    _put("alphagov/whitehall.md", "# whitehall\nPublishes news.")
    _put("alphagov/binary.md", b"\x00\xff", content_type="application/octet-stream")
    _put("_runs/e1/task-0.json", "{}", content_type="application/json")

    op, response = _import()

    meta = op.metadata
    assert (meta.success_count, meta.failure_count, meta.total_count) == (2, 1, 3)
    assert len(response.error_samples) == 1
    assert "gs://digests/alphagov/binary.md: unsupported MIME type" in (
        response.error_samples[0].message
    )
    uri = "gs://digests/alphagov/frontend.md"
    doc_id = hashlib.sha256(uri.encode()).hexdigest()[:32]
    assert doc_id in _ids()
    doc = clients.documents().get_document(name=f"{BRANCH}/documents/{doc_id}")
    assert doc.content.uri == uri and doc.content.mime_type == "text/markdown"
    assert doc.index_time.timestamp() > 0
    # The operation lives under the branch and is listed there.
    assert op.operation.name.startswith(f"{BRANCH}/operations/import-documents-")
    listed = clients.documents().list_operations(request={"name": BRANCH}).operations
    assert [o.name for o in listed] == [op.operation.name]


def test_incremental_keeps_and_full_removes(store: de.DataStore) -> None:
    _put("a/one.md", "alpha")
    _put("b/two.md", "beta")
    _import()
    assert len(_ids()) == 2
    _import(f"gs://{BUCKET}/a/*.md")  # INCREMENTAL: b/two stays
    assert len(_ids()) == 2
    _import(f"gs://{BUCKET}/a/*.md", mode="FULL")
    assert _ids() == {hashlib.sha256(b"gs://digests/a/one.md").hexdigest()[:32]}


def test_search_ranks_by_keyword_and_returns_snippets(store: de.DataStore) -> None:
    _put("alphagov/frontend.md", "frontend " + "filler " * 40 + "zebrafish zebrafish <tag>")
    _put("alphagov/other.md", "zebrafish once")
    _put("alphagov/none.md", "nothing here")
    _import()

    result = _search("Zebrafish")

    assert result.total_size == 2
    first, second = result.results
    data = dict(first.document.derived_struct_data)
    assert data["link"] == "gs://digests/alphagov/frontend.md"
    assert data["title"] == "alphagov/frontend"
    snippet = data["snippets"][0]["snippet"]
    assert "<b>zebrafish</b>" in snippet and "&lt;tag&gt;" in snippet
    assert dict(second.document.derived_struct_data)["link"].endswith("other.md")
    assert _search("zebrafish frontend").total_size == 1  # every word must occur
    assert _search("absent").results == []
    paged = _search("zebrafish", size=1)
    assert len(paged.results) == 1 and paged.next_page_token


def test_bad_requests(store: de.DataStore, emulator: Emulator) -> None:
    with pytest.raises(gexc.NotFound):
        clients.documents().list_documents(parent=f"{COLLECTION}/dataStores/nope/branches/0")
    with pytest.raises(gexc.InvalidArgument, match="data_schema"):
        clients.documents().import_documents(
            request=de.ImportDocumentsRequest(
                parent=BRANCH, gcs_source=de.GcsSource(input_uris=["gs://digests/x.json"])
            )
        )
    _create("plain", content=de.DataStore.ContentConfig.NO_CONTENT)
    with pytest.raises(gexc.InvalidArgument, match="CONTENT_REQUIRED"):
        clients.documents().import_documents(
            request=de.ImportDocumentsRequest(
                parent=f"{COLLECTION}/dataStores/plain/branches/0",
                gcs_source=de.GcsSource(input_uris=["gs://digests/*.md"], data_schema="content"),
            )
        )
    # A missing bucket fails the operation, not the call.
    op = clients.documents().import_documents(
        request=de.ImportDocumentsRequest(
            parent=BRANCH,
            gcs_source=de.GcsSource(input_uris=["gs://no-such-bucket/*.md"], data_schema="content"),
        )
    )
    with pytest.raises(gexc.GoogleAPICallError, match="no-such-bucket does not exist"):
        op.result(timeout=10)


def test_other_operations_still_reach_run(store: de.DataStore) -> None:
    """Discovery Engine answers google.longrunning.Operations first and passes Run's on."""
    op = clients.jobs().create_job(
        parent="projects/p/locations/us-central1",
        job_id="j",
        job=run_v2.Job(
            template=run_v2.ExecutionTemplate(
                template=run_v2.TaskTemplate(containers=[run_v2.Container(image="x")])
            )
        ),
    )
    name = op.operation.name
    got = clients.jobs().get_operation(request={"name": name})
    assert got.name == name and got.done
    with pytest.raises(gexc.NotFound):
        clients.documents().get_operation(request={"name": f"{BRANCH}/operations/nope"})


def test_state_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        clients.storage_client("p").create_bucket(BUCKET)
        _create()
        _put("alphagov/frontend.md", "zebrafish")
        _import()
    with Emulator(state_dir=state) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        assert len(_ids()) == 1
        assert _search("zebrafish").total_size == 1
        ops = clients.documents().list_operations(request={"name": BRANCH}).operations
        assert len(ops) == 1 and ops[0].done


def test_unknown_branch_is_not_found(store: de.DataStore) -> None:
    with pytest.raises(gexc.NotFound):
        clients.documents().list_documents(parent=f"{STORE}/branches/7")


def test_wait_and_delete_operation(store: de.DataStore, emulator: Emulator) -> None:
    import grpc
    from google.longrunning import operations_pb2

    _put("a/one.md", "alpha")
    op = clients.documents().import_documents(
        request=de.ImportDocumentsRequest(
            parent=BRANCH,
            gcs_source=de.GcsSource(input_uris=[f"gs://{BUCKET}/*/*.md"], data_schema="content"),
        )
    )
    name = op.operation.name
    channel = grpc.insecure_channel(emulator.grpc_address)
    wait = channel.unary_unary(
        "/google.longrunning.Operations/WaitOperation",
        request_serializer=operations_pb2.WaitOperationRequest.SerializeToString,
        response_deserializer=operations_pb2.Operation.FromString,
    )
    delete = channel.unary_unary(
        "/google.longrunning.Operations/DeleteOperation",
        request_serializer=operations_pb2.DeleteOperationRequest.SerializeToString,
        response_deserializer=lambda b: b,
    )
    done = wait(operations_pb2.WaitOperationRequest(name=name), timeout=10)
    assert done.done and done.HasField("response")
    delete(operations_pb2.DeleteOperationRequest(name=name), timeout=10)
    with pytest.raises(gexc.NotFound):
        clients.documents().get_operation(request={"name": name})
    channel.close()


def test_list_data_stores_pages_at_most_fifty(emulator: Emulator) -> None:
    """ListDataStoresRequest.page_size: "If unspecified, defaults to 10. The maximum allowed
    value is 50. Values above 50 will be coerced to 50." (data_store_service.proto)"""
    for i in range(51):
        _create(f"ds-{i:02}")
    client = clients.data_stores()
    assert len(client.list_data_stores(parent=COLLECTION).data_stores) == 10
    page = client.list_data_stores(request={"parent": COLLECTION, "page_size": 100})
    assert len(page.data_stores) == 50 and page.next_page_token
