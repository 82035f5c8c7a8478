"""The two halves together: the loopback cloud really runs the ingestion job.

A Cloud Run job whose image is the project's ingestion image is created and run through
the official client libraries; its tasks are local ``python -m ingestion`` processes that
clone from a test git server and write into the emulator's Cloud Storage. Their stdout
comes back as Cloud Logging entries that ``severity>=ERROR`` filters find.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core.exceptions import GoogleAPICallError
from google.cloud import run_v2

from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL
from tests.support.cloud import enable_apis
from tests.support.git import GitServer, head, make_repo

PROJECT = "demo-project"
PARENT = f"projects/{PROJECT}/locations/europe-west2"
IMAGE = "europe-west2-docker.pkg.dev/demo-project/govreposcrape/ingestion:latest"
BUCKET = "govreposcrape-digests"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "state", image_map=default_image_map()) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        enable_apis(PROJECT)  # what `govctl setup` enables
        clients.storage_client(PROJECT).create_bucket(BUCKET)
        yield emu


def _feed(path: Path, server: GitServer, names: list[str]) -> Path:
    entries = [
        {
            "owner": "alphagov",
            "name": name,
            "url": server.url(f"alphagov/{name}"),
            "pushedAt": "2026-11-01T00:00:00Z",
        }
        for name in names
    ]
    path.write_text(json.dumps(entries))
    return path


def _create_job(feed: Path, server: GitServer) -> None:
    container = run_v2.Container(
        image=IMAGE,
        args=["--allow-host", server.host, "--concurrency", "2"],
        env=[
            run_v2.EnvVar(name="REPOS_FEED_URL", value=str(feed)),
            run_v2.EnvVar(name="GCS_BUCKET_NAME", value=BUCKET),
        ],
    )
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            task_count=2,
            template=run_v2.TaskTemplate(containers=[container], max_retries=0),
        )
    )
    clients.jobs().create_job(parent=PARENT, job=job, job_id="ingest").result(polling=FAST_POLL)


def _run(overrides: run_v2.RunJobRequest.Overrides | None = None) -> run_v2.Execution:
    op = clients.jobs().run_job(
        request=run_v2.RunJobRequest(name=f"{PARENT}/jobs/ingest", overrides=overrides)
    )
    try:
        return op.result(polling=FAST_POLL, timeout=120)  # type: ignore[no-any-return]
    except GoogleAPICallError:
        # A failed execution fails the operation; its metadata is still the Execution.
        return op.metadata  # type: ignore[no-any-return]


def _entries(filter_: str) -> list[object]:
    return list(
        clients.logging().list_log_entries(
            request={"resource_names": [f"projects/{PROJECT}"], "filter": filter_}
        )
    )


def test_emulated_cloud_run_job_runs_ingestion_into_the_bucket(
    cloud: Emulator, git_server: GitServer, tmp_path: Path
) -> None:
    names = ["frontend", "publisher", "whitehall"]
    repos = {
        n: make_repo(git_server.root / "alphagov" / n, {"README.md": f"# {n}\n"}) for n in names
    }
    _create_job(_feed(tmp_path / "repos.json", git_server, names), git_server)

    execution = _run()

    assert execution.succeeded_count == 2 and execution.failed_count == 0
    blobs = {b.name: b for b in clients.storage_client(PROJECT).list_blobs(BUCKET)}
    for name in names:
        blob = blobs[f"alphagov/{name}.md"]
        assert blob.metadata["commit"] == head(repos[name])
        assert blob.content_type == "text/markdown; charset=utf-8"
    run_id = execution.name.rsplit("/", 1)[1]
    assert {f"_runs/{run_id}/task-0.json", f"_runs/{run_id}/task-1.json"} <= set(blobs)
    assert git_server.upload_packs() == 3  # each repository cloned by exactly one task

    # The job's JSON lines are structured entries of the execution, with Cloud Run's labels.
    of_run = (
        f'resource.type="cloud_run_job" AND resource.labels.job_name="ingest" '
        f'AND labels."run.googleapis.com/execution_name"="{run_id}"'
    )
    logged = _entries(f"{of_run} AND jsonPayload.repo:*")
    assert {e.json_payload["repo"] for e in logged} >= {f"alphagov/{n}" for n in names}  # type: ignore[attr-defined]
    assert _entries(f"{of_run} AND severity>=ERROR") == []


def test_a_failing_repository_is_found_with_severity_error(
    cloud: Emulator, git_server: GitServer, tmp_path: Path
) -> None:
    make_repo(git_server.root / "alphagov" / "present", {"README.md": "hi\n"})
    _create_job(_feed(tmp_path / "repos.json", git_server, ["present", "missing"]), git_server)

    execution = _run()
    run_id = execution.name.rsplit("/", 1)[1]

    # One of two attempted repositories failed: over the 5% ratio, so its task exits 1.
    assert execution.failed_count == 1 and execution.succeeded_count == 1
    errors = _entries(f'labels."run.googleapis.com/execution_name"="{run_id}" AND severity>=ERROR')
    assert any(e.json_payload.get("repo") == "alphagov/missing" for e in errors)  # type: ignore[attr-defined]

    # The next run: "present" is unchanged and "missing" backs off (docs/ingestion.md,
    # "Persistent failures"): nothing is cloned and, nothing new having failed, both tasks
    # succeed, with the default --max-failure-ratio.
    before = git_server.upload_packs()
    again = _run()
    assert again.succeeded_count == 2
    assert git_server.upload_packs() - before == 0
