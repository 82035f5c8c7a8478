"""Conformance of the emulated Cloud Billing Catalog, driven only through the official client."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import billing_v1

from govctl.emulator.billing.service import load_prices
from govctl.emulator.server import Emulator
from govctl.gcp import clients

CLOUD_RUN = "services/152E-C115-5142"


@pytest.fixture
def catalog(emulator: Emulator) -> billing_v1.CloudCatalogClient:
    return clients.catalog()


def price(rate: billing_v1.PricingExpression.TierRate) -> Decimal:
    return Decimal(rate.unit_price.units) + Decimal(rate.unit_price.nanos) / Decimal(10**9)


def skus(catalog: billing_v1.CloudCatalogClient, service: str) -> list[billing_v1.Sku]:
    return list(catalog.list_skus(parent=service))


def test_services_are_listed_and_paged(catalog: billing_v1.CloudCatalogClient) -> None:
    names = {s.display_name: s.name for s in catalog.list_services()}
    assert names["Cloud Run"] == CLOUD_RUN
    assert {"Cloud Scheduler", "Cloud Storage"} <= set(names)
    pages = list(catalog.list_services(request={"page_size": 1}).pages)
    assert [len(p.services) for p in pages] == [1] * len(names)


def test_cloud_run_job_skus_in_us_central1(catalog: billing_v1.CloudCatalogClient) -> None:
    found = {s.description: s for s in skus(catalog, CLOUD_RUN) if "us-central1" in s.description}
    cpu, memory = found["Jobs CPU in us-central1"], found["Jobs Memory in us-central1"]
    for sku in (cpu, memory):
        assert sku.name == f"{CLOUD_RUN}/skus/{sku.sku_id}"
        assert list(sku.service_regions) == ["us-central1"]
        assert sku.category.service_display_name == "Cloud Run"
        assert sku.category.usage_type == "OnDemand"
        assert sku.service_provider_name == "Google"
        assert sku.geo_taxonomy.type_ == billing_v1.GeoTaxonomy.Type.REGIONAL
    cpu_expr = cpu.pricing_info[0].pricing_expression
    assert cpu_expr.usage_unit == "s"
    # The free tier is a $0 first tier, then the published Tier 1 price.
    first, paid = cpu_expr.tiered_rates
    assert (first.start_usage_amount, price(first)) == (0, 0)
    assert (paid.start_usage_amount, price(paid)) == (240_000, Decimal("0.000018"))
    assert paid.unit_price.currency_code == "USD"
    mem_expr = memory.pricing_info[0].pricing_expression
    assert mem_expr.usage_unit == "GiBy.s"
    assert mem_expr.base_unit == "By.s" and mem_expr.base_unit_conversion_factor == 2**30
    assert [(r.start_usage_amount, price(r)) for r in mem_expr.tiered_rates] == [
        (0, 0),
        (450_000, Decimal("0.000002")),
    ]


def test_tier2_region_costs_more_and_has_no_free_tier(
    catalog: billing_v1.CloudCatalogClient,
) -> None:
    found = {s.description: s for s in skus(catalog, CLOUD_RUN)}
    rates = found["Jobs CPU in europe-west2"].pricing_info[0].pricing_expression.tiered_rates
    assert [(r.start_usage_amount, price(r)) for r in rates] == [(0, Decimal("0.0000252"))]


def test_scheduler_and_storage_prices(catalog: billing_v1.CloudCatalogClient) -> None:
    services = {s.display_name: s.name for s in catalog.list_services()}
    [jobs] = skus(catalog, services["Cloud Scheduler"])
    assert [
        (r.start_usage_amount, price(r))
        for r in jobs.pricing_info[0].pricing_expression.tiered_rates
    ] == [
        (0, 0),
        (3, Decimal("0.1")),
    ]
    storage = {s.description: s for s in skus(catalog, services["Cloud Storage"])}
    london = storage["Standard Storage London"].pricing_info[0].pricing_expression
    assert london.usage_unit == "GiBy.mo"
    assert [price(r) for r in london.tiered_rates] == [Decimal("0.023")]


def test_skus_page_one_by_one(catalog: billing_v1.CloudCatalogClient) -> None:
    everything = skus(catalog, CLOUD_RUN)
    pages = list(catalog.list_skus(request={"parent": CLOUD_RUN, "page_size": 1}).pages)
    assert [p.skus[0] for p in pages] == everything
    assert not pages[-1].next_page_token


def test_unknown_service_and_bad_requests(catalog: billing_v1.CloudCatalogClient) -> None:
    with pytest.raises(exceptions.NotFound):
        skus(catalog, "services/0000-0000-0000")
    with pytest.raises(exceptions.InvalidArgument):
        skus(catalog, "services/cloud-run")
    with pytest.raises(exceptions.InvalidArgument):
        list(catalog.list_skus(request={"parent": CLOUD_RUN, "currency_code": "GBP"}))
    with pytest.raises(exceptions.InvalidArgument):
        list(catalog.list_skus(request={"parent": CLOUD_RUN, "page_token": "bogus"}))


def test_every_price_records_its_source() -> None:
    data = load_prices()
    run_regions = set()
    for sku in data["skus"]:
        assert sku["source"]["url"].startswith("https://cloud.google.com/")
        assert sku["source"]["read"] and isinstance(sku["source"]["verified"], bool)
        assert sku["source"]["note"]
        if sku["service"] == "152E-C115-5142":
            run_regions.update(sku["service_regions"])
    assert {"us-central1", "europe-west2", "europe-west1", "us-east1"} <= run_regions
    # The data file ships inside the package.
    path = Path(__file__).parents[2] / "govctl" / "emulator" / "data" / "prices.json"
    assert json.loads(path.read_text()) == data
