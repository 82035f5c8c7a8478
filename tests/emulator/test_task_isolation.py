"""The attacks of issue 14, item 1, through the official clients: a job of a mapped image runs
only the installed ingestion job, never code or paths its caller chose.

Objects uploaded through Cloud Storage are files under the state directory (fake-gcs-server's
filesystem backend), so a caller can plant Python there; the job spec then tries to make the
task import it (``PYTHONPATH``, ``working_dir``) or write outside the emulator (``--sink``).
Every test plants code that would create a marker file, and checks that nothing appeared
outside the emulator's state directory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import run_v2

from govctl.emulator.images import default_image_map
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import FAST_POLL, PARENT, condition, wait_execution

State = run_v2.Condition.State
IMAGE = "anything.example/govreposcrape/ingestion:latest"  # matches the default map
BUCKET = "planted"


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The system temporary directory, as the emulator sees it (short: a Unix socket's path
    must fit in 107 bytes), where its tasks' scratch directories go."""
    path = Path(tempfile.mkdtemp(prefix="iso-"))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: Path) -> Iterator[Emulator]:
    """What `govctl emulator start` gives: the default image map, no unmapped images; started
    outside the checkout (whose ``ingestion/`` would otherwise shadow everything)."""
    monkeypatch.chdir(tmp_path)
    with Emulator(state_dir=tmp_path / "state", image_map=default_image_map()) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield emu


@pytest.fixture
def planted(cloud: Emulator, tmp_path: Path) -> Path:
    """An ``ingestion`` package uploaded to a bucket; importing it creates ``tmp_path/ran``."""
    code = f"open({str(tmp_path / 'ran')!r}, 'w').write('planted code ran')\n"
    bucket = clients.storage_client("demo-project").create_bucket(BUCKET)
    bucket.blob("ingestion/__init__.py").upload_from_string(code)
    bucket.blob("ingestion/__main__.py").upload_from_string(code)
    directory = tmp_path / "state" / "storage" / BUCKET
    assert (directory / "ingestion" / "__main__.py").is_file()  # the code is on this host
    return directory


def outside_state(tmp_path: Path) -> set[Path]:
    return {p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "state")}


def run(
    container: run_v2.Container,
    job_id: str,
    overrides: run_v2.RunJobRequest.Overrides | None = None,
) -> run_v2.Execution:
    jobs = clients.jobs()
    name = f"{PARENT}/jobs/{job_id}"
    try:
        jobs.get_job(name=name)
    except Exception:
        template = run_v2.TaskTemplate(containers=[container], max_retries=0)
        job = run_v2.Job(template=run_v2.ExecutionTemplate(template=template))
        jobs.create_job(parent=PARENT, job_id=job_id, job=job).result(polling=FAST_POLL)
    op = jobs.run_job(request=run_v2.RunJobRequest(name=name, overrides=overrides))
    return wait_execution(clients.executions(), op.metadata.name, 30)


def texts(execution: run_v2.Execution) -> list[str]:
    ex_id = execution.name.rsplit("/", 1)[-1]
    entries = clients.logging().list_log_entries(
        request={
            "resource_names": ["projects/demo-project"],
            "filter": f'labels."run.googleapis.com/execution_name"="{ex_id}"',
        }
    )
    return [e.text_payload or json.dumps(dict(e.json_payload)) for e in entries]


def env(**values: str) -> list[run_v2.EnvVar]:
    return [run_v2.EnvVar(name=k, value=v) for k, v in values.items()]


def test_planted_code_on_pythonpath_never_runs(planted: Path, tmp_path: Path) -> None:
    before = outside_state(tmp_path)
    for i, variables in enumerate(
        [
            {"PYTHONPATH": str(planted)},
            {"PYTHONSTARTUP": str(planted / "ingestion" / "__init__.py"), "PYTHONINSPECT": "1"},
            {"PYTHONHOME": str(planted), "PYTHONUSERBASE": str(planted)},
            {"LD_PRELOAD": str(planted / "x.so")},
            {"GIT_EXEC_PATH": str(planted), "GIT_SSH_COMMAND": f"touch {tmp_path}/x"},
            {"PATH": str(planted), "TMPDIR": str(tmp_path / "elsewhere")},
            {"OPENSSL_CONF": str(planted / "c.cnf"), "BASH_ENV": str(planted / "x.sh")},
        ]
    ):
        container = run_v2.Container(image=IMAGE, env=env(**variables))
        execution = run(container, f"pythonpath-{i}")
        assert execution.failed_count == 1, (variables, texts(execution))
        message = condition(execution, "Completed").message
        for name in variables:
            assert name in message, (name, message, texts(execution))
        assert "docs/emulator.md" in message
    assert not (tmp_path / "ran").exists()
    assert outside_state(tmp_path) == before


def test_overrides_cannot_bring_the_variables_back(planted: Path, tmp_path: Path) -> None:
    container = run_v2.Container(image=IMAGE, args=["--sink", f"gs://{BUCKET}"])
    co = run_v2.RunJobRequest.Overrides.ContainerOverride(env=env(PYTHONPATH=str(planted)))
    execution = run(
        container, "overridden", run_v2.RunJobRequest.Overrides(container_overrides=[co])
    )
    assert execution.failed_count == 1
    assert "PYTHONPATH" in condition(execution, "Completed").message
    assert not (tmp_path / "ran").exists()


def test_working_dir_in_the_bucket_runs_the_installed_job(
    planted: Path, tmp_path: Path, scratch: Path
) -> None:
    before = outside_state(tmp_path)
    # No sink: the installed job itself refuses to start, and says so in its own words.
    container = run_v2.Container(image=IMAGE, working_dir=str(planted))
    execution = run(container, "workdir")
    assert not (tmp_path / "ran").exists()  # `python -m ingestion` never imported the bucket
    assert execution.failed_count == 1
    assert any("no sink" in line for line in texts(execution)), texts(execution)
    assert outside_state(tmp_path) == before
    # The task ran in a scratch directory of the emulator's, removed with the execution.
    assert not list(scratch.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ["--sink", "{target}"],
        ["--sink={target}"],
        ["--si", "{target}"],  # argparse takes an unambiguous prefix of a flag
        ["--sink", "gs://digests", "--sink", "{target}"],  # the last one wins
        ["--sink", "../../../../{rel}"],  # relative, but out of the scratch directory
    ],
)
def test_a_sink_outside_the_emulator_is_refused(
    cloud: Emulator, tmp_path: Path, args: list[str]
) -> None:
    target = tmp_path / "host-dir"
    rel = target.relative_to("/")
    feed = tmp_path / "repos.json"
    feed.write_text("[]")
    before = outside_state(tmp_path)
    container = run_v2.Container(
        image=IMAGE,
        args=[a.format(target=target, rel=rel) for a in args] + ["--allow-shrink"],
        env=env(REPOS_FEED_URL=str(feed)),
        working_dir="/app",
    )
    execution = run(container, "sink")
    assert execution.failed_count == 1
    message = condition(execution, "Completed").message
    assert "sink" in message and "scratch directory" in message, message
    assert not target.exists()
    assert outside_state(tmp_path) == before


def test_a_bucket_or_a_relative_directory_sink_runs(
    cloud: Emulator, tmp_path: Path, scratch: Path
) -> None:
    feed = tmp_path / "repos.json"
    feed.write_text("[]")
    clients.storage_client("demo-project").create_bucket("digests")
    before = outside_state(tmp_path)
    for i, args in enumerate([["--sink", "gs://digests"], ["--sink", "out"], []]):
        variables = env(REPOS_FEED_URL=str(feed), GCS_BUCKET_NAME="digests")
        container = run_v2.Container(image=IMAGE, args=[*args, "--allow-shrink"], env=variables)
        execution = run(container, f"fine-{i}")
        assert execution.succeeded_count == 1, texts(execution)
    assert outside_state(tmp_path) == before
    assert not list(scratch.iterdir())  # `out` went with its task's scratch directory
    names = [b.name for b in clients.storage_client("demo-project").list_blobs("digests")]
    assert any(n.startswith("_runs/") for n in names)  # the job's run report reached the bucket
