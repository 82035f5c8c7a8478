"""`govctl cost`: the billing math, and bad input refused before any API call."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from govctl.cli.cost import bar, rate, usd
from govctl.gcp import billing
from govctl.gcp.billing import Price, Prices
from govctl.services import cost
from govctl.services.cost import Run, Shape, billed_seconds, estimate

RUNBOOK = Prices(
    "us-central1",
    cpu=Price(0.000024, "vCPU-s", 0, 0.000024, "--price-cpu"),
    memory=Price(0.0000025, "GiB-s", 0, 0.0000025, "--price-mem"),
    storage=Price(0.02, "GiB-month", 5, 0.02, "table"),
    scheduler=Price(0.1, "job-month", 3, 0.1, "table"),
)


@pytest.mark.parametrize(
    ("seconds", "billed"),
    [(0.0, 60.0), (1.5, 60.0), (59.99, 60.0), (60.0, 60.0), (60.01, 60.1), (61.23, 61.3),
     (90.3, 90.3), (21600, 21600.0)],
)  # fmt: skip
def test_a_task_is_billed_at_least_a_minute_in_100ms_steps(seconds: float, billed: float) -> None:
    assert billed_seconds(seconds) == pytest.approx(billed)


def test_the_runbook_figures_per_day_and_month() -> None:
    # 2 vCPU x 4 GiB x 6 h once a day at the runbook's prices: $1.04 + $0.22 a day.
    est = estimate(Shape(2, 4096, 1, 6 * 3600, 1), RUNBOOK, free_tier=False)
    lines = {line.key: line for line in est.lines}
    assert lines["cpu"].quantity_per_run == 43_200
    assert lines["memory"].quantity_per_run == 86_400
    assert lines["cpu"].cost_per_day == pytest.approx(1.0368)
    assert lines["memory"].cost_per_day == pytest.approx(0.216)
    assert (usd(lines["cpu"].cost_per_day), usd(lines["memory"].cost_per_day)) == ("$1.04", "$0.22")
    assert lines["scheduler"].cost_per_month == pytest.approx(0.10)
    assert est.cost_per_month == pytest.approx((1.0368 + 0.216) * 30 + 0.10)
    assert round(est.cost_per_month) == 38
    assert not any(line.key.startswith("free_tier") for line in est.lines)


def test_tasks_multiply_and_the_free_tier_is_its_own_negative_line() -> None:
    # 4 tasks x 10 min x 1 vCPU x 512Mi, daily: 72,000 vCPU-s a month, inside the free tier.
    est = estimate(Shape(1, 512, 4, 600, 1), RUNBOOK)
    lines = {line.key: line for line in est.lines}
    assert lines["cpu"].quantity_per_month == 4 * 600 * 30
    assert lines["free_tier_cpu"].quantity_per_month == -72_000
    assert lines["free_tier_cpu"].cost_per_month == pytest.approx(-lines["cpu"].cost_per_month)
    assert lines["free_tier_memory"].cost_per_month == pytest.approx(
        -lines["memory"].cost_per_month
    )
    assert lines["free_tier_scheduler"].cost_per_month == pytest.approx(-0.10)
    assert est.cost_per_month == pytest.approx(0)


def test_the_free_tier_is_capped_and_valued_at_tier1_prices_where_the_region_has_none() -> None:
    london = billing.bundled("europe-west2")
    assert london.cpu.free == 0 and london.cpu.free_value == pytest.approx(0.000018)
    est = estimate(Shape(2, 4096, 1, 6 * 3600, 1), london)
    lines = {line.key: line for line in est.lines}
    assert lines["free_tier_cpu"].quantity_per_month == -240_000
    assert lines["free_tier_cpu"].cost_per_month == pytest.approx(-240_000 * 0.000018)
    assert lines["free_tier_memory"].quantity_per_month == -450_000
    assert lines["cpu"].unit_price == pytest.approx(0.0000252)


def test_bucket_storage_line_in_gib_months() -> None:
    est = estimate(Shape(1, 512, 1, 60, 1), RUNBOOK, bucket_bytes=15 * 2**30, free_tier=True)
    lines = {line.key: line for line in est.lines}
    assert lines["storage"].quantity_per_month == pytest.approx(15)
    assert lines["storage"].cost_per_month == pytest.approx(0.30)
    assert lines["free_tier_storage"].cost_per_month == pytest.approx(-0.10)  # 5 GiB free


@pytest.mark.parametrize(
    ("cron", "per_day"),
    [("0 2 * * *", 1.0), ("0 2,14 * * *", 2.0), ("*/30 * * * *", 48.0), ("0 2 * * 0", 4 / 30)],
)
def test_runs_per_day_from_the_cron(cron: str, per_day: float) -> None:
    # 2026-12-01 is a Tuesday: the next 30 days hold 4 Sundays.
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert cost.runs_per_day(cron, "Europe/London", now) == pytest.approx(per_day)


def test_history_per_day_and_the_median_run_time() -> None:
    today = date(2026, 11, 30)
    at = datetime(2026, 11, 30, 2, tzinfo=UTC)
    runs = [
        Run("e3", "succeeded", at, (120.0, 300.04)),
        Run("e2", "failed", at - timedelta(days=2), (30.0,)),
        Run("e1", "succeeded", at - timedelta(days=2), (100.0,)),
        Run("e0", "succeeded", at - timedelta(days=9), (5000.0,)),  # outside the 7 days
    ]
    past = cost.history(runs, cpu=2, memory_mib=1024, prices=RUNBOOK, days=7, today=today,
                        zone=UTC)  # fmt: skip
    assert [d.day for d in past.days] == [today - timedelta(days=i) for i in range(6, -1, -1)]
    by_day = {d.day: d for d in past.days}
    assert (by_day[today].executions, by_day[today].tasks) == (1, 2)
    assert by_day[today].vcpu_seconds == pytest.approx(2 * (120 + 300.1))
    assert by_day[today - timedelta(days=2)].vcpu_seconds == pytest.approx(2 * (60 + 100))
    assert by_day[today - timedelta(days=1)].cost == 0
    expected = (120 + 300.1 + 60 + 100) * (2 * 0.000024 + 1 * 0.0000025)
    assert past.total_cost == pytest.approx(expected)
    assert past.executions == 3
    # Of 100, 120, 300.04 and 5000 s; the failed run's 30 s would make it 120.
    assert cost.median_task_seconds(runs) == pytest.approx(210.02)


def test_bar_scales_to_the_peak_in_eighths() -> None:
    assert bar(10, 10, width=4) == "████"
    assert bar(5, 10, width=4) == "██"
    assert bar(1, 10, width=4) == "▍"  # 3.2 eighths
    assert bar(0, 10) == "" and bar(1, 0) == ""


def test_bundled_table_covers_what_it_claims() -> None:
    data = billing.table()
    assert data["date"] == "2026-11-28"
    for region in data["regions"]:
        prices = billing.bundled(region)
        assert prices.cpu.usd > 0 and prices.memory.usd > 0
        assert prices.cpu.source == f"bundled table of {data['date']}"


def test_no_bundled_price_for_an_unknown_region_says_what_to_pass() -> None:
    with pytest.raises(billing.GovctlError, match="pass --price-cpu and --price-mem"):
        billing.bundled("asia-east1")


BAD = [
    ["--tasks", "-1"],
    ["--tasks", "two"],
    ["--runs-per-day", "-2"],
    ["--runs-per-day", "many"],
    ["--duration", "6x"],
    ["--duration", "-5m"],
    ["--duration", "200h"],
    ["--memory", "4GB"],
    ["--cpu", "3"],
    ["--cpu", "1", "--memory", "8Gi"],
    ["--price-cpu", "-0.1"],
    ["--price-mem", "nan"],
    ["--history", "--days", "0"],
    ["--region", "mars-north1"],
]


def test_bad_input_exits_2_in_one_line_without_any_api_call() -> None:
    # A fresh interpreter: no Google client library may even be imported.
    code = (
        "import sys, json, io, contextlib\n"
        "from govctl.cli.main import main\n"
        f"argvs = {json.dumps(BAD)}\n"
        "results = []\n"
        "for argv in argvs:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        code = main(['cost', '--project', 'demo-project', *argv])\n"
        "    results.append([code, err.getvalue()])\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc')))\n"
        "print(json.dumps({'results': results, 'heavy': heavy}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "GOVCTL_EMULATOR_HOST": "127.0.0.1:9", "HOME": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    for argv, (status, err) in zip(BAD, result["results"], strict=True):
        assert status == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith("error: invalid --"), (argv, err)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0368, "$1.04"), (0.216, "$0.22"), (-4.32, "-$4.32"), (0.0033, "$0.0033"),
     (2.3e-6, "$0.00"), (0, "$0.00"), (1234.5, "$1,234.50")],
)  # fmt: skip
def test_money_is_shown_to_the_cent_and_small_sums_to_a_hundredth_of_one(
    value: float, text: str
) -> None:
    assert usd(value) == text


def test_unit_prices_keep_every_digit() -> None:
    assert [rate(v) for v in (0.000024, 0.0000025, 0.1, 0.023, 2.0)] == [
        "$0.000024", "$0.0000025", "$0.10", "$0.023", "$2.00"
    ]  # fmt: skip


def test_cost_and_local_run_help_import_no_google_library() -> None:
    code = (
        "import sys, json\n"
        "from govctl.cli.main import main\n"
        "codes = [main(a) for a in (['cost', '--help'], ['local', 'run', '--help'])]\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc')))\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0], "heavy": []}
    assert "--runs-per-day" in proc.stdout and "--no-container" in proc.stdout


def test_no_answer_is_said_as_unreachable_not_as_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing listens on the emulator's address: the bundled prices, marked unreachable (so
    cost does not go on to read run times and the bucket); the error says why."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{free.getsockname()[1]}"
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
    found = billing.prices("us-central1")
    assert found.reachable is False
    assert found.offline is not None and "the API did not answer" in found.offline


@pytest.mark.parametrize("tasks", [1, 2, 3])
@pytest.mark.parametrize("seconds", [60.0, 61.3, 95.7, 600.0])
@pytest.mark.parametrize(("cpu", "memory_mib"), [(1, 512), (2, 1024)])
def test_a_month_the_free_tier_covers_costs_zero_never_minus_zero(
    cpu: int, memory_mib: int, seconds: float, tasks: int
) -> None:
    # Issue 14 item 10: `status` printed "about $-0.00 a month" — the free tier's lines cancel
    # the usage they cover, and float rounding left -1e-17 behind.
    prices = billing.bundled("us-central1")
    est = cost.estimate(cost.Shape(cpu, memory_mib, tasks, seconds, 1.0), prices)
    for total in (est.cost_per_month, est.cost_per_day):
        assert total >= 0 and math.copysign(1.0, total) == 1.0, total
        assert not f"{total:,.2f}".startswith("-")
    assert est.cost_per_month == 0.0  # all of it within the free tier
