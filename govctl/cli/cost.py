"""`govctl cost`: what the job costs a run, a day and a month, and what recent runs cost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from govctl import render, validate
from govctl.cli.options import Json, Project, Region, number, settings, whole
from govctl.errors import UsageError
from govctl.services import cost as costs
from govctl.services.cost import Price

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")

PANEL = "Shape (default: the settings)"


def _opt(
    flag: str,
    metavar: str,
    help: str,
    panel: str = PANEL,
    parser: Callable[[str], Any] | None = None,
) -> Any:
    return typer.Option(flag, metavar=metavar, help=help, show_default=False,
                        rich_help_panel=panel, parser=parser)  # fmt: skip


@app.command()
def cost(
    runs_per_day: Annotated[float | None, _opt("--runs-per-day", "N",
        "Runs a day [default: from the schedule's cron].", parser=number("--runs-per-day", 0,
        1440, "a number of runs a day from 0 to 1,440"))] = None,
    duration: Annotated[str | None, _opt("--duration", "DUR",
        "One task's run time, e.g. 45m or 6h [default: the median of recent successful "
        "executions, else the task timeout].")] = None,
    tasks: Annotated[str | None, _opt("--tasks", "N", "Tasks per execution.")] = None,
    cpu: Annotated[str | None, _opt("--cpu", "C", "vCPUs per task: 1, 2, 4, 6 or 8.")] = None,
    memory: Annotated[str | None, _opt("--memory", "M", "Memory per task, e.g. 4Gi.")] = None,
    price_cpu: Annotated[float | None, _opt("--price-cpu", "X",
        "USD per vCPU-second instead of the catalog's.", "Prices", parser=number("--price-cpu",
        0, 1, "USD per vCPU-second, e.g. 0.000018"))] = None,
    price_mem: Annotated[float | None, _opt("--price-mem", "Y",
        "USD per GiB-second instead of the catalog's.", "Prices", parser=number("--price-mem",
        0, 1, "USD per GiB-second, e.g. 0.000002"))] = None,
    no_free_tier: Annotated[bool, typer.Option("--no-free-tier", help="Leave out the free tier "
        "(it is shared by every project of the billing account).", rich_help_panel="Prices")]
        = False,
    history: Annotated[bool, typer.Option("--history", help="What the recent executions "
        "actually cost, per day.")] = False,
    days: Annotated[int, _opt("--days", "N", "Days of --history [default: 7].", "History",
        parser=whole("--days", 1, 90))] = 7,
    project: Project = None,
    region: Region = None,
    json: Json = False,
) -> None:  # fmt: skip
    """Estimate what the job costs a run, a day and a month (like `infracost breakdown`).

    Prices come from the Cloud Billing Catalog for the region (offline: govctl's bundled,
    dated table), each shown with its source. `--history` prices the executions of the last
    `--days` days instead. Runbook: `gcloud billing accounts list` and a spreadsheet.
    """
    request = costs.Request(
        runs_per_day=runs_per_day,
        duration=validate.duration(duration, "--duration") if duration is not None else None,
        price_cpu=price_cpu,
        price_mem=price_mem,
        free_tier=not no_free_tier,
    )  # fmt: skip
    if request.duration is not None and request.duration > validate.MAX_TASK_TIMEOUT:
        raise UsageError(f"invalid --duration {duration!r}: expected at most 168h "
                         "(Cloud Run's task timeout limit)")  # fmt: skip
    period = days
    cfg = settings(project, region, job_cpu=cpu, job_memory=memory, job_tasks=tasks)
    now = datetime.now(UTC)
    if history:
        cfg.require_project()
        with render.progress("reading executions and prices"):
            past = costs.past(cfg, period, request, now)
        offline = costs.offline_warning(past.prices)
        if offline:
            render.warn(offline)
        if json:
            render.json_out(_history_json(past))
        else:
            _show_history(past, cfg.job.name)
        return
    warnings: list[str] = []
    with render.progress("reading prices, executions and the bucket"):
        estimate = costs.gather(cfg, request, now, warnings)
    for warning in warnings:
        render.warn(warning)
    if json:
        render.json_out(_estimate_json(estimate, cfg.job.name))
    else:
        _show_estimate(estimate, cfg.job.name)


# --- text -----------------------------------------------------------------------------


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 0.00005:
        return "$0.00"
    if value >= 0.01:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:.4f}"


def rate(value: float) -> str:
    """A unit price with all its digits (``$0.0000025``), at least to the cent."""
    text = format(Decimal(repr(value)).normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def quantity(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def _source(price: Price) -> str:
    parts = [price.source]
    if price.sku_id:
        parts.append(f'SKU {price.sku_id} "{price.description}"')
    if price.effective and price.source.startswith("Cloud"):
        parts.append(f"effective {price.effective}")
    return ", ".join(parts)


def _show_estimate(est: costs.Estimate, job: str) -> None:
    shape = est.shape
    render.out(f"Cost of {job} in {est.region}: {shape.tasks} task(s) x {shape.cpu} vCPU x "
               f"{validate.format_memory(shape.memory_mib)}, "
               f"{validate.format_duration(shape.duration_s)} a task, "
               f"{shape.runs_per_day:g} run(s) a day")  # fmt: skip
    render.out()
    rows: list[list[Any]] = []
    for line in est.lines:
        item = line.item + (" (shared with the billing account)" if "free" in line.key else "")
        rows.append([item, quantity(line.quantity_per_run, line.unit),
                     quantity(line.quantity_per_month, line.unit),
                     f"{rate(line.unit_price)} / {line.unit}", usd(line.cost_per_run),
                     usd(line.cost_per_day), usd(line.cost_per_month)])  # fmt: skip
    rows.append(["total", "", "", "", usd(est.cost_per_run), usd(est.cost_per_day),
                 usd(est.cost_per_month)])  # fmt: skip
    render.table(["item", "per run", "per month", "unit price", "cost/run", "cost/day",
                  "cost/month"], rows)  # fmt: skip
    render.out()
    month = est.cost_per_month
    about = f"${month:,.0f}" if abs(month) >= 10 else usd(month)
    render.out(f"About {about} a month ({usd(est.cost_per_day)} a day); "
               f"one run {usd(est.cost_per_run)} before the free tier.")  # fmt: skip
    render.out()
    render.out("Prices:")
    prices = est.prices
    shown = {line.key for line in est.lines}
    registry = prices.registry if "registry" in shown else None
    for name, price in (("CPU", prices.cpu), ("memory", prices.memory),
                        ("storage", prices.storage), ("scheduler", prices.scheduler),
                        ("registry", registry)):  # fmt: skip
        if price is not None:
            render.out(f"  {name:<9} {rate(price.usd)} / {price.unit}   {_source(price)}")
    render.out("Assumptions:")
    for note in est.assumptions:
        render.out(f"  - {note}")


def bar(value: float, peak: float, width: int = 30) -> str:
    """A horizontal bar in eighths of a character."""
    if peak <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / peak * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[part]


def _show_history(past: costs.History, job: str) -> None:
    render.out(f"What {job} cost in {past.region}, the last {len(past.days)} days "
               f"({past.cpu} vCPU x {validate.format_memory(past.memory_mib)} a task, before "
               f"the free tier)")  # fmt: skip
    render.out()
    peak = max((d.cost for d in past.days), default=0.0)
    render.table(
        ["day", "runs", "tasks", "vCPU-s", "GiB-s", "cost", ""],
        [[render.day(d.day), d.executions, d.tasks, f"{d.vcpu_seconds:,.0f}",
          f"{d.gib_seconds:,.0f}", usd(d.cost), bar(d.cost, peak)] for d in past.days],
    )  # fmt: skip
    render.out()
    render.out(f"Total: {usd(past.total_cost)} for {past.executions} execution(s) in "
               f"{len(past.days)} days.")  # fmt: skip
    render.out(f"Prices: CPU {rate(past.prices.cpu.usd)} / vCPU-s ({_source(past.prices.cpu)}); "
               f"memory {rate(past.prices.memory.usd)} / GiB-s "
               f"({_source(past.prices.memory)}).")  # fmt: skip
    render.out("Each task is billed for its run time, at least 1 minute, in 100 ms steps; "
               "resources are the settings' (executions do not record them here).")  # fmt: skip


# --- JSON -----------------------------------------------------------------------------


def _price_json(price: Price | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {"usd": price.usd, "unit": price.unit, "free_units": price.free,
            "free_unit_value": price.free_value, "source": price.source,
            "sku_id": price.sku_id, "description": price.description,
            "effective_date": price.effective}  # fmt: skip


def _estimate_json(est: costs.Estimate, job: str) -> dict[str, Any]:
    shape = est.shape
    p = est.prices
    return {
        "job": job,
        "region": est.region,
        "currency": "USD",
        "days_per_month": costs.DAYS_PER_MONTH,
        "free_tier_applied": est.free_tier,
        "shape": {
            "cpu": shape.cpu,
            "memory_mib": shape.memory_mib,
            "memory": validate.format_memory(shape.memory_mib),
            "tasks": shape.tasks,
            "duration_seconds": shape.duration_s,
            "billed_seconds_per_task": est.billed_seconds_per_task,
            "runs_per_day": shape.runs_per_day,
            "runs_per_month": est.runs_per_month,
        },
        "prices": {"cpu": _price_json(p.cpu), "memory": _price_json(p.memory),
                   "storage": _price_json(p.storage), "scheduler": _price_json(p.scheduler),
                   "registry": _price_json(p.registry)},
        "prices_offline_reason": p.offline,
        "lines": [asdict(line) for line in est.lines],
        "total_per_run": est.cost_per_run,
        "total_per_day": est.cost_per_day,
        "total_per_month": est.cost_per_month,
        "assumptions": est.assumptions,
    }  # fmt: skip


def _history_json(past: costs.History) -> dict[str, Any]:
    return {
        "region": past.region,
        "currency": "USD",
        "cpu": past.cpu,
        "memory_mib": past.memory_mib,
        "free_tier_applied": False,
        "prices": {"cpu": _price_json(past.prices.cpu), "memory": _price_json(past.prices.memory)},
        "prices_offline_reason": past.prices.offline,
        "days": [{**asdict(d), "day": d.day.isoformat()} for d in past.days],
        "executions": past.executions,
        "total_cost": past.total_cost,
    }  # fmt: skip
