"""Prices of what the job uses, from the Cloud Billing Catalog or govctl's bundled table.

Catalog: Cloud Run is service ``152E-C115-5142`` with SKUs "Jobs CPU in REGION" (unit ``s``,
a vCPU-second) and "Jobs Memory in REGION" (``GiBy.s``); Cloud Storage ``95FF-2EF5-5EA1``
("Standard Storage …" SKUs whose ``service_regions`` hold the region, ``GiBy.mo``); Cloud
Scheduler ``1F14-4801-0E16`` ("Jobs", per job-month). A price is ``units + nanos / 1e9`` USD
per ``usage_unit``; a free tier is a $0 first tier, whose end is the free amount. SKUs are
matched on their description, never on SKU ids (which differ between catalogs).

Offline (no credentials, the API unreachable or refusing), :func:`prices` falls back to the
bundled table ``govctl/data/prices.json`` and says so, with its date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from govctl.errors import CloudError, GovctlError
from govctl.gcp import clients
from govctl.gcp.errors import translate

CLOUD_RUN = "services/152E-C115-5142"
CLOUD_STORAGE = "services/95FF-2EF5-5EA1"
CLOUD_SCHEDULER = "services/1F14-4801-0E16"
CATALOG = "Cloud Billing Catalog"
# Units the catalog prices in, as factors to govctl's units (vCPU-s, GiB-s, GiB-month).
_UNITS = {"s": 1.0, "min": 1 / 60, "h": 1 / 3600, "GiBy.s": 1.0, "GiBy.h": 1 / 3600,
          "GiBy.mo": 1.0, "mo": 1.0}  # fmt: skip
_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Price:
    """USD per ``unit``, above ``free`` units a month (per billing account)."""

    usd: float
    unit: str  # vCPU-s, GiB-s, GiB-month, job-month
    free: float  # the $0 first tier; 0 when there is none
    free_value: float  # what one free unit is worth (Tier 1 price where the region has none)
    source: str  # "Cloud Billing Catalog", "bundled table of 2026-11-28", "--price-cpu"
    sku_id: str | None = None
    description: str | None = None
    effective: str | None = None  # ISO date the price took effect (or the table's date)


@dataclass(frozen=True)
class Prices:
    region: str
    cpu: Price
    memory: Price
    storage: Price | None  # None: no Standard storage price known for the region
    scheduler: Price
    registry: Price | None = None  # Artifact Registry storage (not in the catalog snapshot)
    offline: str | None = None  # why the bundled table was used
    reachable: bool = True  # False: no credentials or no answer, so other reads would fail too

    def with_flags(self, cpu: float | None, memory: float | None) -> Prices:
        """The prices with ``--price-cpu`` / ``--price-mem`` in place of the catalog's."""
        result = self
        if cpu is not None:
            result = replace(result, cpu=Price(cpu, "vCPU-s", 0, cpu, "--price-cpu"))
        if memory is not None:
            result = replace(result, memory=Price(memory, "GiB-s", 0, memory, "--price-mem"))
        return result


@cache
def table() -> dict[str, Any]:
    text = resources.files("govctl").joinpath("data/prices.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def registry_price() -> Price:
    """Artifact Registry storage: the published price, from the bundled table."""
    data = table()
    row = data["artifact_registry"]
    return Price(float(row["usd"]), "GiB-month", float(row["free_gib"]), float(row["usd"]),
                 f"bundled table of {data['date']}", effective=data["date"])  # fmt: skip


def bundled(region: str, reason: str | None = None) -> Prices:
    """The bundled table's prices for ``region``; a GovctlError when it has none."""
    data = table()
    row = data["regions"].get(region)
    if row is None:
        known = ", ".join(sorted(data["regions"]))
        raise GovctlError(
            f"no bundled price for {region} (the table has {known})",
            fix="pass --price-cpu and --price-mem (USD per vCPU-second and GiB-second)",
        )
    source, day = f"bundled table of {data['date']}", data["date"]
    tier1 = data["tier1"]

    def price(key: str, unit: str, free_key: str, tier1_value: str | None) -> Price:
        usd = float(row[key])
        free = float(row.get(free_key, 0))
        value = usd if free or tier1_value is None else float(tier1_value)
        return Price(usd, unit, free, value, source, effective=day)

    sched = data["scheduler"]
    return Prices(
        region=region,
        cpu=price("cpu", "vCPU-s", "free_cpu", tier1["cpu"]),
        memory=price("memory", "GiB-s", "free_memory", tier1["memory"]),
        storage=price("storage", "GiB-month", "free_storage", None),
        scheduler=Price(
            float(sched["usd"]),
            "job-month",
            float(sched["free"]),
            float(sched["usd"]),
            source,
            effective=day,
        ),
        registry=registry_price(),
        offline=reason,
    )


def _usd(money: Any) -> float:
    return float(money.units) + float(money.nanos) / 1e9


def _price(sku: Any, unit: str, tier1_value: float | None) -> Price | None:
    """A SKU's paid rate and its $0 first tier, in govctl's units; None if unreadable."""
    if not sku.pricing_info:
        return None
    info = sku.pricing_info[0]
    expr = info.pricing_expression
    factor = _UNITS.get(expr.usage_unit)
    rates = list(expr.tiered_rates)
    if factor is None or not rates:
        return None
    free = 0.0
    paid = rates[0]
    if _usd(rates[0].unit_price) == 0 and len(rates) > 1:
        free, paid = float(rates[1].start_usage_amount) / factor, rates[1]
    usd = _usd(paid.unit_price) * factor
    effective = info.effective_time
    day = date(effective.year, effective.month, effective.day).isoformat() if effective else None
    value = usd if free or tier1_value is None else tier1_value
    return Price(usd, unit, free, value, CATALOG, sku.sku_id, sku.description, day)


def _skus(service: str) -> list[Any]:
    with translate(f"read prices of {service} from the Cloud Billing Catalog"):
        client = clients.catalog()
        return list(client.list_skus(parent=service, timeout=_TIMEOUT_S))


def catalog(region: str) -> Prices:
    """Live prices for ``region``; GovctlError when the catalog cannot be read or lacks them."""
    tier1 = table()["tier1"]
    run = {s.description: s for s in _skus(CLOUD_RUN)}
    cpu_sku, mem_sku = run.get(f"Jobs CPU in {region}"), run.get(f"Jobs Memory in {region}")
    cpu = _price(cpu_sku, "vCPU-s", float(tier1["cpu"])) if cpu_sku else None
    memory = _price(mem_sku, "GiB-s", float(tier1["memory"])) if mem_sku else None
    if cpu is None or memory is None:
        raise GovctlError(f"the Cloud Billing Catalog has no Cloud Run jobs price for {region}")
    storage = None
    for sku in _skus(CLOUD_STORAGE):
        if sku.description.startswith("Standard Storage") and region in sku.service_regions:
            storage = _price(sku, "GiB-month", None)
            if storage is not None:
                break
    scheduler = None
    try:
        for sku in _skus(CLOUD_SCHEDULER):
            if sku.description == "Jobs":
                scheduler = _price(sku, "job-month", None)
    except GovctlError:
        pass  # a catalog without Cloud Scheduler: its published price below
    if scheduler is None:
        scheduler = bundled(region).scheduler if region in table()["regions"] else Price(
            0.1, "job-month", 3, 0.1, f"bundled table of {table()['date']}")  # fmt: skip
    return Prices(region, cpu, memory, storage, scheduler, registry_price())


def prices(region: str) -> Prices:
    """Catalog prices, else the bundled table with the reason in ``offline``."""
    try:
        return catalog(region)
    except GovctlError as err:
        try:
            table_prices = bundled(region, reason=str(err))
        except GovctlError as missing:
            raise GovctlError(
                f"no price for {region}: the catalog failed ({err}) and the bundled table has none",
                fix=missing.fix,
            ) from None
        return replace(
            table_prices, reachable=not (isinstance(err, CloudError) and err.unreachable)
        )
