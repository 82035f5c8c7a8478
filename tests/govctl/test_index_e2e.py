"""`govctl index` end to end: a real ingestion run writes digests, `sync` imports them into the
emulator's Discovery Engine, `status` reads them back, `search` finds a repository by a word in
its README."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import index as index_service
from tests.govctl.test_run_e2e import BUCKET, JOB, PROJECT, REGION, _create_job, _feed, _govctl
from tests.support.cloud import job_cloud
from tests.support.git import GitServer, make_repo

READMES = {
    "frontend": "# frontend\nServes GOV.UK pages to the public.\n",
    "whitehall": "# whitehall\nPublishes news about the axolotl sanctuary.\n",
}


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    settings = {"GOVCTL_JOB_NAME": JOB, "GOVCTL_BUCKET_NAME": BUCKET}
    with job_cloud(tmp_path, monkeypatch, project=PROJECT, region=REGION, bucket=BUCKET,
                   settings=settings) as emu:  # fmt: skip
        monkeypatch.setattr(index_service, "POLL_S", 0.1)
        yield emu


def _repos(server: GitServer, readmes: dict[str, str]) -> None:
    for name, readme in readmes.items():
        make_repo(server.root / "alphagov" / name, {"README.md": readme})


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

    # A run writes two digests; both are pending until a sync.
    _repos(git_server, READMES)
    feed = _feed(tmp_path / "repos.json", git_server, list(READMES))
    _create_job(str(feed), git_server)
    assert _govctl(capsys, "run")[0] == 0
    data = json.loads(_govctl(capsys, "index", "status", "--json")[1])
    assert (data["digests"], data["pending_digests"], data["last_import"]) == (2, 2, None)

    code, out, err = _govctl(capsys, "index", "sync")
    assert code == 0, err
    assert "Import succeeded in" in out and "2 imported, 0 failed of 2" in out
    assert f"importing gs://{BUCKET}/*/*.md into govreposcrape-search" in err

    code, out, _ = _govctl(capsys, "index", "status")
    assert code == 0
    assert "govreposcrape-search (global) · 2 documents" in out
    assert "last import  succeeded" in out and "2 imported, 0 failed of 2" in out
    assert f"0 of 2 digests in gs://{BUCKET} are newer than the last successful import" in out
    data = json.loads(_govctl(capsys, "index", "status", "--json")[1])
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

    # A new repository: pending after the next run, findable after the next sync.
    _repos(git_server, {"notify": "# notify\nSends texts about quokka sightings.\n"})
    _feed(tmp_path / "repos.json", git_server, [*READMES, "notify"])
    code, out, err = _govctl(capsys, "index", "search", "quokka")
    assert code == 0 and out == "" and "no results for 'quokka'" in err
    assert _govctl(capsys, "run")[0] == 0
    data = json.loads(_govctl(capsys, "index", "status", "--json")[1])
    assert (data["digests"], data["pending_digests"]) == (3, 1)
    assert _govctl(capsys, "index", "sync")[0] == 0
    out = _govctl(capsys, "index", "search", "quokka")[1]
    assert "alphagov/notify" in out


def test_sync_reports_digests_it_could_not_import(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = clients.storage_client(PROJECT).bucket(BUCKET)
    bucket.blob("alphagov/good.md").upload_from_string(
        "# good", content_type="text/markdown; charset=utf-8"
    )
    bucket.blob("alphagov/odd.md").upload_from_string(b"\x00", content_type="image/png")
    assert _govctl(capsys, "index", "create")[0] == 0

    code, out, err = _govctl(capsys, "index", "sync")

    assert code == 1
    assert "1 imported, 1 failed of 2" in out
    assert f"gs://{BUCKET}/alphagov/odd.md: unsupported MIME type 'image/png'" in out
    assert "1 of 2 digests could not be imported" in err
    out = _govctl(capsys, "index", "status")[1]
    assert "error: gs://" in out and "odd.md" in out


def test_sync_no_wait_prints_the_operation(
    cloud: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _govctl(capsys, "index", "create")[0] == 0
    code, out, err = _govctl(capsys, "index", "sync", "--no-wait")
    assert code == 0, err
    assert "/branches/0/operations/import-documents-" in out
    assert "govctl index status" in err
    # --json: the finished import, as `status --json` shows it.
    result = json.loads(_govctl(capsys, "index", "sync", "--json")[1])
    assert result["state"] == "succeeded" and result["total_count"] == 0
    assert result["name"].startswith("projects/demo-project/locations/global/")


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


def test_settings_from_govctl_toml_name_the_data_store(
    cloud: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "govctl.toml").write_text('[index]\ndata_store = "digests-eu"\nlocation = "eu"\n')

    assert _govctl(capsys, "index", "create")[0] == 0
    data = json.loads(_govctl(capsys, "index", "status", "--json")[1])

    assert (data["data_store"], data["location"], data["exists"]) == ("digests-eu", "eu", True)
    store = clients.data_stores().get_data_store(
        name="projects/demo-project/locations/eu/collections/default_collection/"
        "dataStores/digests-eu"
    )
    assert store.content_config.name == "CONTENT_REQUIRED"


def test_ctrl_c_while_syncing_detaches(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from govctl.gcp import index as gcp_index

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


def test_an_import_that_fails_says_why(
    cloud: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _govctl(capsys, "index", "create")[0] == 0
    monkeypatch.setenv("GOVCTL_BUCKET_NAME", "no-such-bucket")

    code, out, err = _govctl(capsys, "index", "sync")

    assert code == 1
    assert "Import failed in" in out
    assert "error: the import failed: Cloud Storage bucket no-such-bucket does not exist." in err
    data = json.loads(_govctl(capsys, "index", "status", "--json")[1])
    assert data["last_import"]["state"] == "failed" and data["last_success"] is None
    assert data["bucket_error"].startswith("list gs://no-such-bucket: not found")
