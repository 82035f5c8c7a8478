"""`govctl cost` against the loopback cloud: live catalog prices, history, the bucket line."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import run_v2

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import billing, clients
from tests.emulator.run_support import FAST_POLL, wait_execution
from tests.support.cloud import enable_apis

PROJECT = "demo-project"
REGION = "europe-west2"
IMAGE = "europe-west2-docker.pkg.dev/demo-project/test/sleepy:1"
TASK_S = 0.4


def cost(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["cost", "--project", PROJECT, *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def cost_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    status, out, err = cost(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _no_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator")
        enable_apis(PROJECT)  # what `govctl setup` enables
    monkeypatch.chdir(tmp_path)
    for var in ("GOVCTL_CONFIG", "GOVCTL_JOB_NAME", "GOVCTL_REGION", "GOVCTL_BUCKET_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))


@pytest.mark.parametrize(
    ("region", "cpu", "memory"), [("us-central1", 0.000018, 0.000002),
                                  ("europe-west2", 0.0000252, 0.0000028)]
)  # fmt: skip
def test_prices_come_live_from_the_catalog(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], region: str, cpu: float, memory: float
) -> None:
    data = cost_json(capsys, "--region", region, "--duration", "1h", "--runs-per-day", "1")
    prices = data["prices"]
    assert prices["cpu"]["usd"] == pytest.approx(cpu)
    assert prices["memory"]["usd"] == pytest.approx(memory)
    for key in ("cpu", "memory", "scheduler"):
        assert prices[key]["source"] == "Cloud Billing Catalog"
        assert prices[key]["sku_id"] and prices[key]["effective_date"] == "2026-11-28"
    assert prices["cpu"]["description"] == f"Jobs CPU in {region}"
    assert data["prices_offline_reason"] is None
    # Tier 1 has the free tier as a $0 first tier; Tier 2 has none and is valued at Tier 1.
    assert prices["cpu"]["free_units"] == (240_000 if region == "us-central1" else 0)
    assert prices["cpu"]["free_unit_value"] == pytest.approx(0.000018)


def test_bundled_table_is_the_emulated_catalog(emulator: Emulator) -> None:
    for region in billing.table()["regions"]:
        live, table = billing.catalog(region), billing.bundled(region)
        for name in ("cpu", "memory", "storage", "scheduler"):
            a, b = getattr(live, name), getattr(table, name)
            assert a.unit == b.unit, (region, name)
            assert (a.usd, a.free, a.free_value) == pytest.approx((b.usd, b.free, b.free_value)), (
                region,
                name,
            )


def test_the_runbook_command_prints_the_runbook_figures(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--price-cpu", "0.000024", "--price-mem", "0.0000025", "--cpu", "2", "--memory",
            "4Gi", "--duration", "6h", "--runs-per-day", "1", "--no-free-tier"]  # fmt: skip
    status, out, err = cost(capsys, *argv)
    assert status == 0, err
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    cpu, memory = rows["Cloud Run job: CPU"], rows["Cloud Run job: memory"]
    assert cpu[-2] == "$1.04" and memory[-2] == "$0.22"  # per day
    assert "About $38 a month" in out
    assert not any(line.startswith("free tier") for line in out.splitlines())
    assert "$0.000024 / vCPU-s   --price-cpu" in out
    assert "Cloud Billing Catalog" in out  # the scheduler's price, with its source
    data = cost_json(capsys, *argv)
    assert data["total_per_month"] == pytest.approx((1.0368 + 0.216) * 30 + 0.1)
    assert data["free_tier_applied"] is False


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_offline_uses_the_bundled_table_and_says_its_date(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", f"127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{_closed_port()}")
    status, out, err = cost(capsys, "--region", "europe-west2")
    assert status == 0, err
    assert "warning: prices from govctl's bundled table of 2026-11-28, not the live catalog" in err
    assert "bundled table of 2026-11-28" in out
    assert "is not running — `govctl emulator start`" in err
    # Nothing else is tried once Google Cloud does not answer (each would wait for retries).
    assert "the task timeout (Google Cloud unreachable" in out
    assert "bucket storage not counted: Google Cloud unreachable" in out


@pytest.fixture
def sleepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator whose test image is a task that sleeps TASK_S seconds."""
    command = f"{sys.executable} -c 'import time; time.sleep({TASK_S})'"
    with Emulator(state_dir=tmp_path / "state", image_map={"*/test/sleepy*": command}) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        enable_apis(PROJECT)  # what `govctl setup` enables
        monkeypatch.setenv("GOVCTL_JOB_NAME", "sleepy")
        monkeypatch.setenv("GOVCTL_REGION", REGION)
        yield emu


def _create_and_run(times: int) -> list[run_v2.Execution]:
    parent = f"projects/{PROJECT}/locations/{REGION}"
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            task_count=2,
            template=run_v2.TaskTemplate(containers=[run_v2.Container(image=IMAGE)],
                                         max_retries=0),
        )
    )  # fmt: skip
    clients.jobs().create_job(parent=parent, job=job, job_id="sleepy").result(polling=FAST_POLL)
    done = []
    for _ in range(times):
        op = clients.jobs().run_job(name=f"{parent}/jobs/sleepy")
        done.append(wait_execution(clients.executions(), op.metadata.name))
    return done


def test_history_after_two_executions(sleepy: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _create_and_run(2)
    assert all(r.succeeded_count == 2 for r in runs)

    data = cost_json(capsys, "--history", "--days", "3", "--cpu", "1", "--memory", "2Gi")
    assert len(data["days"]) == 3
    today = data["days"][-1]
    # 2 executions x 2 tasks, each billed the 1-minute minimum.
    assert (today["executions"], today["tasks"]) == (2, 4)
    assert today["vcpu_seconds"] == pytest.approx(4 * 60 * 1)
    assert today["gib_seconds"] == pytest.approx(4 * 60 * 2)
    assert today["cost"] == pytest.approx(240 * 0.0000252 + 480 * 0.0000028)
    assert data["total_cost"] == pytest.approx(today["cost"])
    assert data["executions"] == 2

    status, out, err = cost(capsys, "--history", "--days", "3", "--cpu", "1", "--memory", "2Gi")
    assert status == 0, err
    today_row = next(line for line in out.splitlines() if line.startswith(today["day"]))
    assert today_row.rstrip().endswith("█" * 30)  # the peak day's bar is full width
    assert "Total: $0.0074 for 2 execution(s) in 3 days." in out

    # The estimate now plans with the median task run time, not the 6h timeout.
    estimate = cost_json(capsys, "--runs-per-day", "1")
    assert TASK_S <= estimate["shape"]["duration_seconds"] < 30
    assert estimate["shape"]["billed_seconds_per_task"] == 60
    assert any("the median of the tasks of the last 2 successful execution(s)" in a
               for a in estimate["assumptions"])  # fmt: skip


def test_no_history_means_the_task_timeout_said_as_such(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cost_json(capsys, "--runs-per-day", "1")
    assert data["shape"]["duration_seconds"] == 6 * 3600
    assert any("the task timeout (the job is not deployed" in a for a in data["assumptions"])


def test_the_bucket_line_prices_its_size(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = clients.storage_client(PROJECT).create_bucket("govreposcrape-summaries")
    sizes = [1000, 2500, 40_000]
    for i, size in enumerate(sizes):
        bucket.blob(f"org/repo{i}.md").upload_from_string(b"x" * size)

    data = cost_json(capsys, "--region", "europe-west2", "--duration", "10m", "--runs-per-day",
                     "1")  # fmt: skip
    storage = next(line for line in data["lines"] if line["key"] == "storage")
    assert storage["quantity_per_month"] == pytest.approx(sum(sizes) / 2**30)
    assert storage["unit_price"] == pytest.approx(0.023)
    assert storage["price_source"] == "Cloud Billing Catalog"
    assert any("holds 42.5 KiB" in a for a in data["assumptions"])

    status, out, _ = cost(capsys, "--region", "europe-west2", "--duration", "10m")
    assert status == 0
    assert "Cloud Storage: the bucket" in out


def test_the_artifact_registry_line_prices_the_job_image_repository(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import artifactregistry_v1

    parent = f"projects/{PROJECT}/locations/us-central1"
    clients.artifact_registry().create_repository(
        parent=parent, repository_id="govreposcrape",
        repository=artifactregistry_v1.Repository(
            format_=artifactregistry_v1.Repository.Format.DOCKER),
    ).result(polling=FAST_POLL)  # fmt: skip
    image = f"us-central1-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
    registry = emulator.service("artifactregistry")
    registry.record_image(image, "sha256:" + "a" * 64, ["v1"], 400 * 2**20)
    registry.record_image(image, "sha256:" + "b" * 64, ["v2"], 300 * 2**20)

    data = cost_json(capsys, "--region", "us-central1", "--duration", "10m")
    lines = {line["key"]: line for line in data["lines"]}
    assert lines["registry"]["quantity_per_month"] == pytest.approx(700 / 1024)
    assert lines["registry"]["cost_per_month"] == pytest.approx(0.1 * 700 / 1024)
    # 0.5 GiB of it is free for the billing account.
    assert lines["free_tier_registry"]["cost_per_month"] == pytest.approx(-0.05)
    assert any(f"{image.rsplit('/', 1)[0]} holds 700.0 MiB" in a for a in data["assumptions"])


def test_no_registry_repository_is_said(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cost_json(capsys, "--region", "us-central1", "--duration", "10m")
    assert "registry" not in {line["key"] for line in data["lines"]}
    assert any("Artifact Registry storage not counted: " in a and a.endswith("not found")
               for a in data["assumptions"])  # fmt: skip


def test_a_line_per_part_of_the_pipeline_each_with_its_free_tier(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    clients.storage_client(PROJECT).create_bucket("govreposcrape-summaries")
    data = cost_json(capsys, "--region", "us-central1", "--duration", "10m")
    lines = {line["key"]: line for line in data["lines"]}
    assert {"cpu", "memory", "scheduler", "storage", "search"} <= set(lines)
    assert lines["cpu"]["free"] == "240,000 vCPU-s a month"
    assert lines["memory"]["free"] == "450,000 GiB-s a month"
    assert lines["scheduler"]["free"] == "3 jobs"
    assert lines["storage"]["free"] == "5 GB-month"
    # No data store: the search line says why it is not counted.
    assert lines["search"]["note"].startswith("Vertex AI Search not counted: no data store")
    assert lines["search"]["cost_per_month"] == 0
    assert lines["search"]["free"] == "10 GiB index, 10,000 queries a month"
    # Billed at least a minute a task, in 100 ms steps: said.
    assert any("at least 1 minute, in 100 ms steps" in a for a in data["assumptions"])
    status, out, _ = cost(capsys, "--region", "us-central1", "--duration", "10m")
    assert status == 0
    row = next(line for line in out.splitlines() if line.startswith("Vertex AI Search"))
    assert row.rstrip().endswith("not counted")
    assert "free tier" in out.splitlines()[3]  # the table's header


def test_a_job_not_deployed_is_an_estimate_for_the_settings(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cost_json(capsys, "--duration", "10m")
    assert data["deployed"] is False
    status, out, _ = cost(capsys, "--duration", "10m")
    assert status == 0
    assert out.startswith("An estimate for the settings: govreposcrape-ingestion is not deployed")
    assert "a month if deployed as configured" in out


def test_the_search_index_is_priced_when_the_data_store_exists(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from govctl.gcp import index

    clients.storage_client(PROJECT).create_bucket("govreposcrape-summaries")
    index.create_data_store(index.store_path(PROJECT, "global", "govreposcrape-search"), "digests")
    data = cost_json(capsys, "--region", "us-central1", "--duration", "10m",
                     "--queries-per-month", "25000")  # fmt: skip
    lines = {line["key"]: line for line in data["lines"]}
    assert lines["search_queries"]["quantity_per_month"] == 25
    assert lines["search_queries"]["cost_per_month"] == pytest.approx(25 * 1.5)
    assert lines["free_tier_search_queries"]["cost_per_month"] == pytest.approx(-15)
    assert lines["search_index"]["unit_price"] == 5
    assert data["prices"]["search_queries"]["source"] == "bundled table of 2026-11-28"
    assert "generative-ai-app-builder/pricing" in data["prices"]["search_queries"]["description"]


def test_the_live_schedule_is_priced_and_its_drift_from_the_settings_said(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15, item 3: after `schedule set "0 2,14 * * *"`, cost priced 1 run a day."""
    from google.cloud import scheduler_v1

    parent = f"projects/{PROJECT}/locations/{REGION}"
    clients.scheduler().create_job(
        parent=parent,
        job=scheduler_v1.Job(
            name=f"{parent}/jobs/govreposcrape-daily-ingest", schedule="0 2,14 * * *",
            time_zone="Etc/UTC",
            http_target=scheduler_v1.HttpTarget(
                uri=f"https://run.googleapis.com/v2/{parent}/jobs/x:run"),
        ),
    )  # fmt: skip
    data = cost_json(capsys, "--region", REGION, "--duration", "10m")
    assert data["shape"]["runs_per_day"] == 2
    said = next(a for a in data["assumptions"] if "run(s) a day" in a)
    assert "from '0 2,14 * * *' (Etc/UTC) over the next 30 days: the live schedule, which " \
           "differs from govctl.toml's '0 2 * * *' (Etc/UTC): `govctl deploy` applies " \
           "govctl.toml" in said  # fmt: skip


def test_cold_runs_are_left_out_of_the_run_time_unless_asked(
    sleepy: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run digests every repository (14 minutes at 20,000): it is no daily run."""
    runs = _create_and_run(3)
    bucket = clients.storage_client(PROJECT).create_bucket("govreposcrape-summaries")
    for i, run in enumerate(runs):
        cold = i == 0
        counts = {"to_do": 100 if cold else 2, "unchanged": 0 if cold else 98}
        report = {"execution": run.name.rsplit("/", 1)[1], "task_index": 0, "counts": counts}
        bucket.blob(f"_runs/{report['execution']}/task-0.json").upload_from_string(
            json.dumps(report))  # fmt: skip
    data = cost_json(capsys, "--runs-per-day", "1")
    said = data["assumptions"][0]
    assert "the median of the tasks of the last 2 successful execution(s), leaving out 1 " \
           "cold run(s)" in said and "--include-cold" in said  # fmt: skip
    data = cost_json(capsys, "--runs-per-day", "1", "--include-cold")
    assert "the last 3 successful execution(s)" in data["assumptions"][0]
    assert "cold" not in data["assumptions"][0]


def test_only_cold_runs_so_far_are_used_and_said(
    sleepy: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (run,) = _create_and_run(1)
    bucket = clients.storage_client(PROJECT).create_bucket("govreposcrape-summaries")
    name = run.name.rsplit("/", 1)[1]
    report = {"task_index": 0, "counts": {"to_do": 50, "unchanged": 0}}
    bucket.blob(f"_runs/{name}/task-0.json").upload_from_string(json.dumps(report))
    data = cost_json(capsys, "--runs-per-day", "1")
    assert data["shape"]["duration_seconds"] < 30  # not the 6h task timeout
    assert "only cold runs so far" in data["assumptions"][0]
