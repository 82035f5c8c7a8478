"""Discovery Engine v1 in the loopback cloud, through the official clients."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.cloud import discoveryengine_v1 as de
from google.cloud import run_v2
from google.rpc import code_pb2

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


def _put(name: str, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> None:
    bucket = clients.storage_client("p").bucket(BUCKET)
    bucket.blob(name).upload_from_string(body, content_type=content_type)


def _import(uri: str = f"gs://{BUCKET}/alphagov/*.md", mode: str = "INCREMENTAL") -> tuple:
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
    assert doc.content.uri == uri and doc.content.mime_type == "text/plain"
    assert doc.index_time.timestamp() > 0
    # The operation lives under the branch and is listed there.
    assert op.operation.name.startswith(f"{BRANCH}/operations/import-documents-")
    listed = clients.documents().list_operations(request={"name": BRANCH}).operations
    assert [o.name for o in listed] == [op.operation.name]


def test_incremental_keeps_and_full_removes(store: de.DataStore) -> None:
    _put("a/one.md", "alpha")
    _put("a/two.md", "beta")
    _import(f"gs://{BUCKET}/a/*.md")
    assert len(_ids()) == 2
    _import(f"gs://{BUCKET}/a/one.md")  # INCREMENTAL: a/two stays
    assert len(_ids()) == 2
    _import(f"gs://{BUCKET}/a/one.md", mode="FULL")
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
                parent=BRANCH,
                gcs_source=de.GcsSource(input_uris=["gs://digests/x.csv"], data_schema="csv"),
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
            gcs_source=de.GcsSource(input_uris=[f"gs://{BUCKET}/a/*.md"], data_schema="content"),
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


# -- what the service refuses (govctl/emulator/discoveryengine/limits.py has the sources) -------


def _manifest_import(*uris: str) -> tuple:
    op = clients.documents().import_documents(
        request=de.ImportDocumentsRequest(
            parent=BRANCH,
            gcs_source=de.GcsSource(input_uris=list(uris), data_schema="document"),
        )
    )
    return op, op.result(timeout=30)


def _line(doc_id: str, uri: str, mime: str = "text/plain", **struct: str) -> str:
    return json.dumps(
        {"id": doc_id, "structData": struct, "content": {"mimeType": mime, "uri": uri}}
    )


def test_the_old_markdown_import_indexes_nothing(store: de.DataStore) -> None:
    """govctl's old request: every digest as `content`, `text/markdown`, `gs://B/*/*.md`."""
    _put("alphagov/frontend.md", "# frontend", "text/markdown; charset=utf-8")
    _put("alphagov/notify.md", "# notify", "text/markdown; charset=utf-8")

    # A wildcard before the last segment is refused (GcsSource shows one in the last only).
    with pytest.raises(gexc.InvalidArgument, match="only in the last path segment"):
        _import(f"gs://{BUCKET}/*/*.md")
    # Markdown is not among Document.Content's MIME types: each file fails.
    op, response = _import(f"gs://{BUCKET}/alphagov/*.md")

    meta = op.metadata
    assert (meta.success_count, meta.failure_count, meta.total_count) == (0, 2, 2)
    messages = [s.message for s in response.error_samples]
    assert all("unsupported MIME type 'text/markdown'" in m for m in messages), messages
    assert response.error_samples[0].code == code_pb2.INVALID_ARGUMENT
    assert _ids() == set()


def test_a_manifest_imports_documents_with_ids_metadata_and_a_declared_type(
    store: de.DataStore,
) -> None:
    # The object keeps its own type (Markdown); the document declares text/plain.
    _put("alphagov/frontend.md", "# frontend\nServes the zebrafish pages.", "text/markdown")
    lines = [
        _line(
            "repo-1",
            f"gs://{BUCKET}/alphagov/frontend.md",
            owner="alphagov",
            repository="alphagov/frontend",
        ),
    ]
    _put("_index/imports/1.jsonl", "\n".join(lines) + "\n\n", "application/json")

    op, response = _manifest_import(f"gs://{BUCKET}/_index/imports/1.jsonl")

    assert (op.metadata.success_count, op.metadata.failure_count) == (1, 0)
    assert list(response.error_samples) == []
    doc = clients.documents().get_document(name=f"{BRANCH}/documents/repo-1")
    assert doc.content.mime_type == "text/plain"
    assert doc.content.uri == f"gs://{BUCKET}/alphagov/frontend.md"
    assert dict(doc.struct_data)["repository"] == "alphagov/frontend"
    (hit,) = _search("zebrafish").results
    assert hit.id == "repo-1"
    assert dict(hit.document.struct_data) == {
        "owner": "alphagov",
        "repository": "alphagov/frontend",
    }


def test_a_manifest_line_the_service_refuses_is_a_failure_with_a_sample(
    store: de.DataStore,
) -> None:
    _put("a/small.txt", "fine")
    _put("a/big.txt", "x" * 2_500_001)
    _put("a/limit.txt", "y" * 2_500_000)
    lines = [
        _line("ok-1", f"gs://{BUCKET}/a/small.txt"),
        _line("ok-2", f"gs://{BUCKET}/a/limit.txt"),  # exactly 2.5 MB: accepted
        _line("big", f"gs://{BUCKET}/a/big.txt"),
        _line("markdown", f"gs://{BUCKET}/a/small.txt", mime="text/markdown"),
        _line("bad_id", f"gs://{BUCKET}/a/small.txt"),
        _line("-dash", f"gs://{BUCKET}/a/small.txt"),
        _line("x" * 129, f"gs://{BUCKET}/a/small.txt"),
        _line("gone", f"gs://{BUCKET}/a/missing.txt"),
        json.dumps({"id": "no-content", "structData": {}}),
        "not json",
    ]
    _put("m.jsonl", "\n".join(lines))

    op, response = _manifest_import(f"gs://{BUCKET}/m.jsonl")

    meta = op.metadata
    assert (meta.success_count, meta.failure_count, meta.total_count) == (2, 8, 10)
    text = "\n".join(s.message for s in response.error_samples)
    assert "(document big): gs://digests/a/big.txt: the file is 2,500,001 bytes" in text
    assert "text-based content may be at most 2,500,000 bytes" in text
    assert "(document markdown): unsupported MIME type 'text/markdown'" in text
    assert "invalid document id 'bad_id'" in text and "invalid document id '-dash'" in text
    assert "invalid document id 'xxxx" in text
    assert "gs://digests/a/missing.txt does not exist" in text
    assert "(document no-content): no content" in text
    assert "gs://digests/m.jsonl line 10: not a JSON object" in text
    assert _ids() == {"ok-1", "ok-2"}


def test_too_many_files_or_documents_fail_the_import(store: de.DataStore) -> None:
    for i in range(101):
        _put(f"many/{i:03}.jsonl", "")
    with pytest.raises(gexc.GoogleAPICallError, match="at most 100 files"):
        _manifest_import(f"gs://{BUCKET}/many/*.jsonl")

    many = "\n".join(json.dumps({"id": f"d{i}"}) for i in range(100_001))
    _put("huge.jsonl", many)
    with pytest.raises(gexc.GoogleAPICallError, match="100001 documents: at most 100000"):
        _manifest_import(f"gs://{BUCKET}/huge.jsonl")
    # A URI without a wildcard names one object, which must exist.
    with pytest.raises(gexc.GoogleAPICallError, match=r"gs://digests/absent\.jsonl does not exist"):
        _manifest_import(f"gs://{BUCKET}/absent.jsonl")


def test_purge_and_delete_documents(store: de.DataStore) -> None:
    _put("a/one.txt", "alpha")
    lines = [_line(f"d-{i}", f"gs://{BUCKET}/a/one.txt") for i in range(3)]
    _put("m.jsonl", "\n".join(lines))
    _manifest_import(f"gs://{BUCKET}/m.jsonl")
    names = [f"{BRANCH}/documents/d-0", f"{BRANCH}/documents/d-1", f"{BRANCH}/documents/absent"]

    def purge(force: bool, filter_: str = "*") -> tuple:
        op = clients.documents().purge_documents(
            request=de.PurgeDocumentsRequest(
                parent=BRANCH,
                filter=filter_,
                inline_source=de.PurgeDocumentsRequest.InlineSource(documents=names),
                force=force,
            )
        )
        return op.metadata, op.result(timeout=10)

    with pytest.raises(gexc.InvalidArgument, match="only supported value is '\\*'"):
        purge(True, filter_='id: ANY("d-0")')
    _, dry = purge(False)
    assert dry.purge_count == 2 and sorted(dry.purge_sample) == names[:2]
    assert _ids() == {"d-0", "d-1", "d-2"}
    meta, done = purge(True)
    assert done.purge_count == 2
    assert (meta.success_count, meta.ignored_count, meta.failure_count) == (2, 1, 0)
    assert _ids() == {"d-2"}
    assert _search("alpha").total_size == 1

    clients.documents().delete_document(name=f"{BRANCH}/documents/d-2")
    assert _ids() == set()
    with pytest.raises(gexc.NotFound):
        clients.documents().delete_document(name=f"{BRANCH}/documents/d-2")


def _client_dialling(emulator: Emulator, host: str) -> de.DataStoreServiceClient:
    """A DataStoreService client that reaches the emulator but says it dialled ``host`` (the
    authority a client of the real endpoint sends)."""
    import grpc
    from google.cloud.discoveryengine_v1.services.data_store_service.transports import (
        DataStoreServiceGrpcTransport,
    )

    options = [("grpc.default_authority", host)] if host else []
    channel = grpc.insecure_channel(emulator.grpc_address, options=options)
    return de.DataStoreServiceClient(transport=DataStoreServiceGrpcTransport(channel=channel))


def test_a_regional_data_store_needs_its_regional_endpoint(emulator: Emulator) -> None:
    eu = "projects/p/locations/eu/collections/default_collection"
    regional = _client_dialling(emulator, "eu-discoveryengine.googleapis.com")
    regional.create_data_store(
        parent=eu, data_store=de.DataStore(display_name="x"), data_store_id="ds"
    ).result(timeout=10)
    assert regional.get_data_store(name=f"{eu}/dataStores/ds").name.endswith("/ds")

    world = _client_dialling(emulator, "discoveryengine.googleapis.com")
    with pytest.raises(gexc.InvalidArgument) as err:
        world.get_data_store(name=f"{eu}/dataStores/ds")
    assert 'can only serve traffic from "global" region, but got "eu" region' in str(err.value)
    with pytest.raises(gexc.InvalidArgument, match='"eu" region, but got "global"'):
        regional.list_data_stores(parent=COLLECTION)
    # A client that dialled the emulator's own address says nothing about the endpoint.
    assert _client_dialling(emulator, "").get_data_store(name=f"{eu}/dataStores/ds").name
