"""`govctl index` end to end: a real ingestion run writes digests, `sync` imports them into the
emulator's Discovery Engine (a JSONL manifest of text/plain documents), `status` reads the job's
summary, `search` finds a repository by a word in its README.

The emulator refuses what Vertex AI Search refuses (tests/emulator/test_discoveryengine.py):
the old sync — a `content` import of `gs://BUCKET/*/*.md`, Markdown objects — fails there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.cloud import discoveryengine_v1 as de

from govctl.emulator.discoveryengine import importer
from govctl.emulator.server import Emulator
from govctl.gcp import clients, index_objects
from govctl.services import index_plan, index_sync
from tests.govctl.test_run_e2e import BUCKET, JOB, PROJECT, REGION, _create_job, _feed, _govctl
from tests.support.cloud import job_cloud
from tests.support.git import GitServer, make_repo
from tests.support.storage_count import StorageCounter

READMES = {
    "frontend": "# frontend\nServes GOV.UK pages to the public.\n",
    "whitehall": "# whitehall\nPublishes news about the axolotl sanctuary.\n",
}
STORE = "govreposcrape-search"
COLLECTION = f"projects/{PROJECT}/locations/global/collections/default_collection"
BRANCH = f"{COLLECTION}/dataStores/{STORE}/branches/0"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    settings = {"GOVCTL_JOB_NAME": JOB, "GOVCTL_BUCKET_NAME": BUCKET}
    with job_cloud(tmp_path, monkeypatch, project=PROJECT, region=REGION, bucket=BUCKET,
                   settings=settings) as emu:  # fmt: skip
        monkeypatch.setattr(index_sync, "POLL_S", 0.1)
        yield emu


def _repos(server: GitServer, readmes: dict[str, str]) -> None:
    for name, readme in readmes.items():
        make_repo(server.root / "alphagov" / name, {"README.md": readme})


def _imports(branch: str = BRANCH) -> list[str]:
    """The ImportDocuments calls the emulator has answered (each made one operation)."""
    ops = clients.documents().list_operations(request={"name": branch}).operations
    return [op.name for op in ops if "/operations/import-documents-" in op.name]


def _doc_ids() -> set[str]:
    return {d.id for d in clients.documents().list_documents(parent=BRANCH)}


def _wait_for_imports(capsys: pytest.CaptureFixture[str], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while _status(capsys)["last_import"]["state"] == "running":
        assert time.monotonic() < deadline, "the import did not end"
        time.sleep(0.05)


def _status(capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, err = _govctl(capsys, "index", "status", "--json")
    assert code == 0, err
    return json.loads(out)


def test_sync_status_search_after_a_run(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before the data store exists: status says so, sync refuses with the fix.
    code, out, err = _govctl(capsys, "index", "status")
    assert code == 0, err
    assert "govreposcrape-search (global) missing — create it with `govctl index create`" in out
    code, _, err = _govctl(capsys, "index", "sync")
    assert code == 1
    assert "data store govreposcrape-search missing" in err
    assert "create it with `govctl index create`" in err
    assert _govctl(capsys, "index", "status", "--json")[1].count('"exists": false') == 1

    code, out, _ = _govctl(capsys, "index", "create")
    assert code == 0 and out.startswith("created  projects/demo-project/locations/global/")
    assert _govctl(capsys, "index", "create")[1].startswith("exists  ")
    code, out, _ = _govctl(capsys, "index", "status")
    assert "0 documents" in out and "last import  none yet — next: govctl index sync" in out

    # A run writes two digests; both wait for a sync (the job's summary says so).
    _repos(git_server, READMES)
    feed = _feed(tmp_path / "repos.json", git_server, list(READMES))
    _create_job(str(feed), git_server)
    assert _govctl(capsys, "run")[0] == 0
    data = _status(capsys)
    assert (data["digests"], data["pending_digests"], data["last_import"]) == (2, 2, None)
    assert data["pending_from"] == "summary"

    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0, err
    assert "Import succeeded in" in out and "2 imported, 0 failed of 2" in out
    assert "importing into govreposcrape-search" in err

    # The emulator's import: a manifest of text/plain documents, no error.
    (name,) = _imports()
    op = clients.documents().get_operation(request={"name": name})
    meta = de.ImportDocumentsMetadata.deserialize(op.metadata.value)
    assert (meta.success_count, meta.failure_count) == (2, 0)
    assert not de.ImportDocumentsResponse.deserialize(op.response.value).error_samples
    doc_id = index_plan.document_id("alphagov/whitehall")
    doc = clients.documents().get_document(name=f"{BRANCH}/documents/{doc_id}")
    assert doc.content.mime_type == "text/plain"
    assert doc.content.uri == f"gs://{BUCKET}/alphagov/whitehall.md"
    assert dict(doc.struct_data)["repository"] == "alphagov/whitehall"
    assert dict(doc.struct_data)["url"].endswith("alphagov/whitehall")

    code, out, _ = _govctl(capsys, "index", "status")
    assert code == 0
    assert "govreposcrape-search (global) · 2 documents" in out
    assert "last import  succeeded" in out and "2 imported, 0 failed of 2" in out
    assert f"0 of 2 digests in gs://{BUCKET} were processed after the last sync" in out
    data = _status(capsys)
    assert data["documents"] == 2 and data["pending_digests"] == 0
    assert data["last_import"]["state"] == "succeeded"

    # A word of a README finds its repository.
    code, out, err = _govctl(capsys, "index", "search", "axolotl")
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if "alphagov/whitehall" in line]
    assert "axolotl sanctuary" in row
    assert "1 of 1 results" in err
    result = json.loads(_govctl(capsys, "index", "search", "GOV.UK", "--json")[1])
    assert [r["repository"] for r in result["results"]] == ["alphagov/frontend"]
    assert result["results"][0]["link"] == f"gs://{BUCKET}/alphagov/frontend.md"

    # A sync with nothing changed imports nothing: no ImportDocuments call.
    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0, err
    assert "Nothing to import." in out
    assert len(_imports()) == 1

    # A new repository: pending after the next run, findable after the next sync, which
    # imports it alone.
    _repos(git_server, {"notify": "# notify\nSends texts about quokka sightings.\n"})
    _feed(tmp_path / "repos.json", git_server, [*READMES, "notify"])
    code, out, err = _govctl(capsys, "index", "search", "quokka")
    assert code == 0 and out == "" and "no results for 'quokka'" in err
    assert _govctl(capsys, "run")[0] == 0
    data = _status(capsys)
    assert (data["digests"], data["pending_digests"]) == (3, 1)
    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0, err
    assert "1 imported, 0 failed of 1" in out
    assert "alphagov/notify" in _govctl(capsys, "index", "search", "quokka")[1]
    assert len(_doc_ids()) == 3


def test_a_repository_that_leaves_the_feed_leaves_the_index(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readmes = {**READMES, "notify": "# notify\nSends texts about quokka sightings.\n"}
    _repos(git_server, readmes)
    feed = _feed(tmp_path / "repos.json", git_server, list(readmes))
    _create_job(str(feed), git_server)
    assert _govctl(capsys, "index", "create")[0] == 0
    assert _govctl(capsys, "run")[0] == 0
    assert _govctl(capsys, "index", "sync")[0] == 0
    assert "alphagov/notify" in _govctl(capsys, "index", "search", "quokka")[1]

    _feed(tmp_path / "repos.json", git_server, list(READMES))  # notify left the feed
    assert _govctl(capsys, "run")[0] == 0
    code, out, err = _govctl(capsys, "index", "sync")

    assert code == 0, err
    assert "Removed 1 repositories that left the feed (1 documents purged)" in out
    assert "Nothing to import." in out
    code, out, err = _govctl(capsys, "index", "search", "quokka")
    assert code == 0 and out == "" and "no results for 'quokka'" in err
    assert index_plan.document_id("alphagov/notify") not in _doc_ids()
    assert len(_doc_ids()) == 2
    # The job keeps the digest of a repository that left the feed; the index does not.
    assert clients.storage_client(PROJECT).bucket(BUCKET).blob("alphagov/notify.md").exists()
    assert _status(capsys)["documents"] == 2


def _big_repo(server: GitServer) -> None:
    """A repository whose digest is over 5 MB: files under the job's 512 KiB per-file cap."""
    line = "The quick brown fox jumps over the lazy dog near the harbour wall.\n"
    files = {f"docs/chapter-{i:02}.txt": line * (480_000 // len(line)) for i in range(11)}
    files["docs/chapter-99.txt"] = line * 100 + "A narwhal surfaced at dawn.\n"
    make_repo(server.root / "alphagov" / "big", {"README.md": "# big\n", **files})


def test_a_5_mb_digest_is_indexed_in_parts(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _big_repo(git_server)
    _repos(git_server, {"frontend": READMES["frontend"]})
    feed = _feed(tmp_path / "repos.json", git_server, ["big", "frontend"])
    _create_job(str(feed), git_server)
    assert _govctl(capsys, "index", "create")[0] == 0
    assert _govctl(capsys, "run")[0] == 0
    size = clients.storage_client(PROJECT).bucket(BUCKET).get_blob("alphagov/big.md").size
    assert 5_000_000 < size < 6_000_000
    parts = index_plan.part_count(size)
    assert parts == 3

    code, out, err = _govctl(capsys, "index", "sync")

    assert code == 0, err
    assert f"{parts + 1} imported, 0 failed of {parts + 1}" in out
    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    part_names = sorted(b.name for b in bucket.list_blobs(prefix="_index/parts/"))
    assert part_names == [f"_index/parts/alphagov/big/{k}.txt" for k in range(1, parts + 1)]
    sizes = [bucket.get_blob(n).size for n in part_names]
    assert all(s <= 2_500_000 for s in sizes), sizes
    ids = _doc_ids()
    assert set(index_plan.document_ids("alphagov/big", parts)) <= ids and len(ids) == parts + 1
    code, out, err = _govctl(capsys, "index", "search", "narwhal")
    assert code == 0, err
    assert f"alphagov/big (part {parts}/{parts})" in out
    hit = json.loads(_govctl(capsys, "index", "search", "narwhal", "--json")[1])["results"][0]
    assert hit["link"] == f"gs://{BUCKET}/_index/parts/alphagov/big/{parts}.txt"

    # It leaves the feed: its documents and its part objects go.
    _feed(tmp_path / "repos.json", git_server, ["frontend"])
    assert _govctl(capsys, "run")[0] == 0
    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0, err
    assert f"({parts} documents purged)" in out
    assert not list(bucket.list_blobs(prefix="_index/parts/"))
    assert _doc_ids() == {index_plan.document_id("alphagov/frontend")}


def test_status_and_a_quiet_sync_list_nothing_when_the_summary_exists(
    cloud: Emulator,
    git_server: GitServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _repos(git_server, READMES)
    _create_job(str(_feed(tmp_path / "repos.json", git_server, list(READMES))), git_server)
    assert _govctl(capsys, "index", "create")[0] == 0
    assert _govctl(capsys, "run")[0] == 0

    with StorageCounter(cloud.storage_url) as counter:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", counter.url)
        # Before any sync, and after one: the summary answers, no listing.
        assert _status(capsys)["pending_digests"] == 2
        assert counter.whole_bucket_listings(BUCKET) == 0
        assert _govctl(capsys, "index", "sync")[0] == 0
        assert counter.whole_bucket_listings(BUCKET) == 2  # the digests: the ranges around "_"
        counter.clear()
        assert _status(capsys)["pending_digests"] == 0
        assert counter.whole_bucket_listings(BUCKET) == 0
        assert counter.requests, "the proxy saw govctl's storage requests"

        # The run ended seconds before that sync's listing: a digest it was still uploading
        # could have been missed, so the next sync lists. Past the margin it trusts the summary.
        monkeypatch.setattr(index_sync, "OVERLAP", timedelta(0))
        counter.clear()
        code, out, err = _govctl(capsys, "index", "sync")
        assert code == 0, err
        assert "Nothing to import." in out and "the feed is the same" in err
        assert counter.whole_bucket_listings(BUCKET) == 0
        assert len(_imports()) == 1


def test_without_a_summary_status_lists_and_says_so(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    bucket.blob("alphagov/good.md").upload_from_string("# good", content_type="text/markdown")
    assert _govctl(capsys, "index", "create")[0] == 0
    code, out, _ = _govctl(capsys, "index", "status")
    assert code == 0
    assert "all 1 digests" in out and "(listed the bucket: it has no summary of the job's)" in out
    assert _status(capsys)["pending_from"] == "listing"


def test_sync_reports_documents_it_could_not_import(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    bucket.blob("alphagov/good.md").upload_from_string("# good", content_type="text/markdown")
    bucket.blob("alphagov/odd.md").upload_from_string(b"\xff\xfe", content_type="text/markdown")
    assert _govctl(capsys, "index", "create")[0] == 0

    code, out, err = _govctl(capsys, "index", "sync")

    assert code == 1
    assert "1 imported, 1 failed of 2" in out
    assert "the content is not valid UTF-8 text" in out
    assert "1 of 2 documents could not be imported" in err
    assert "the next `govctl index sync` imports them again" in err
    out = _govctl(capsys, "index", "status")[1]
    assert "error: gs://" in out
    # Nothing was recorded: the next sync imports both again.
    bucket.blob("alphagov/odd.md").upload_from_string(b"# odd", content_type="text/markdown")
    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0, err
    assert "2 imported, 0 failed of 2" in out


def test_sync_no_wait_is_recorded_by_the_next_sync(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    bucket.blob("alphagov/good.md").upload_from_string("# good", content_type="text/markdown")
    assert _govctl(capsys, "index", "create")[0] == 0
    # The emulator's import waits a little before it reads anything: still running below.
    monkeypatch.setattr(importer, "START_SECONDS", 1.0)
    code, out, err = _govctl(capsys, "index", "sync", "--no-wait")
    assert code == 0, err
    assert "/branches/0/operations/import-documents-" in out
    assert "the next sync records it" in err
    code, _, err = _govctl(capsys, "index", "sync")
    assert code == 1
    assert "that an earlier sync started is still running" in err
    assert "wait for it to end (`govctl index status`), then sync again" in err
    _wait_for_imports(capsys)

    # --json: what the sync did; the earlier import is recorded first.
    code, out, err = _govctl(capsys, "index", "sync", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["settled"].startswith("recorded the import projects/demo-project/")
    assert result["run"] is None and result["changed"] == 0 and result["listed"] == 1
    assert len(_imports()) == 1


def test_settings_from_govctl_toml_name_the_data_store(
    cloud: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "govctl.toml").write_text('[index]\ndata_store = "digests-eu"\nlocation = "eu"\n')

    assert _govctl(capsys, "index", "create")[0] == 0
    data = _status(capsys)

    assert (data["data_store"], data["location"], data["exists"]) == ("digests-eu", "eu", True)
    store = clients.data_stores("eu").get_data_store(
        name="projects/demo-project/locations/eu/collections/default_collection/"
        "dataStores/digests-eu"
    )
    assert store.content_config.name == "CONTENT_REQUIRED"


def test_a_data_store_in_eu_is_reached_through_its_regional_endpoint(
    cloud: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOVCTL_INDEX_LOCATION", "eu")
    for client in (clients.data_stores("eu"), clients.documents("eu"), clients.search("eu")):
        assert client.api_endpoint == "eu-discoveryengine.googleapis.com:443"
    assert clients.documents().api_endpoint == "discoveryengine.googleapis.com:443"
    assert _govctl(capsys, "index", "create")[0] == 0

    code, out, err = _govctl(capsys, "index", "status")
    assert code == 0, err
    assert "govreposcrape-search (eu) · 0 documents" in out

    # Through the global endpoint (what every index command used before) the service, and the
    # emulator, refuse an eu data store.
    monkeypatch.setattr(
        clients, "discovery_engine_endpoint", lambda location: clients.DISCOVERY_ENGINE
    )
    code, _, err = _govctl(capsys, "index", "status")
    assert code == 1
    assert "Incorrect API endpoint used" in err and '"eu" region' in err


def test_ctrl_c_while_syncing_detaches(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from govctl.gcp import index as gcp_index

    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    bucket.blob("alphagov/good.md").upload_from_string("# good", content_type="text/markdown")
    assert _govctl(capsys, "index", "create")[0] == 0

    def interrupted(name: str) -> None:
        raise KeyboardInterrupt

    # The operator presses Ctrl-C while the import is being followed.
    monkeypatch.setattr(gcp_index, "get_import", interrupted)
    monkeypatch.setattr(gcp_index.ImportRun, "done", property(lambda self: False))
    code, _, err = _govctl(capsys, "index", "sync")

    assert code == 130
    assert "Stopped watching; import projects/demo-project/" in err
    assert "goes on" in err and "govctl index status" in err


def test_an_import_that_fails_says_why_and_records_nothing(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    bucket.blob("alphagov/good.md").upload_from_string("# good", content_type="text/markdown")
    assert _govctl(capsys, "index", "create")[0] == 0
    # The manifest never reaches the bucket: the service fails the import.
    with monkeypatch.context() as patched:
        patched.setattr(index_objects, "write_lines", lambda p, b, path, lines: None)
        code, out, err = _govctl(capsys, "index", "sync")

    assert code == 1
    assert "Import failed in" in out
    assert "error: the import failed: gs://govreposcrape-digests/_index/imports/" in err
    assert "does not exist" in err
    data = _status(capsys)
    assert data["last_import"]["state"] == "failed" and data["last_success"] is None
    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0 and "1 imported, 0 failed of 1" in out


def test_a_missing_bucket_is_said_with_the_fix(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _govctl(capsys, "index", "create")[0] == 0
    monkeypatch.setenv("GOVCTL_BUCKET_NAME", "no-such-bucket")

    code, _, err = _govctl(capsys, "index", "sync")

    assert code == 1
    assert "list gs://no-such-bucket: not found" in err and "govctl setup" in err
    assert _status(capsys)["bucket_error"].startswith("list gs://no-such-bucket: not found")
    assert _imports() == []


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (["index", "search", ""], {}, "empty search query"),
        (["index", "search", "   "], {}, "empty search query"),
        (["index", "search", "x", "-n", "0"], {}, "invalid -n 0: expected a whole number from 1"),
        (["index", "search", "x", "-n", "101"], {}, "invalid -n 101"),
        (["index", "search", "x", "-n", "ten"], {}, "invalid -n 'ten'"),
        (["index", "status"], {"GOVCTL_INDEX_LOCATION": "mars"}, "GOVCTL_INDEX_LOCATION 'mars'"),
        (["index", "sync"], {"GOVCTL_INDEX_DATA_STORE": "Bad Store"}, "'Bad Store'"),
    ],
)
def test_bad_input_is_exit_2_before_any_call(
    argv: list[str],
    env: dict[str, str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing listens here: a call would fail with exit 1, not 2.
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    code, out, err = _govctl(capsys, *argv)

    assert code == 2, err
    assert says in err and out == ""
    assert len(err.strip().splitlines()) == 1
