"""Cloud Billing Catalog v1 (``google.cloud.billing.v1.CloudCatalog``) for the loopback cloud.

ListServices and ListSkus serve the published prices recorded in ``emulator/data/prices.json``
(where and when each was read is in that file). The catalog is read-only, so nothing of it is
kept in the state file.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from importlib import resources
from typing import Any

from google.cloud import billing_v1
from google.protobuf import timestamp_pb2
from google.type import money_pb2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.rpc import Paging, invalid_argument, matched, not_found

_SERVICE_RE = re.compile(r"services/([0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4})")
CURRENCY = "USD"

# ListServicesRequest / ListSkusRequest.page_size: "Defaults to 5000" (cloud_catalog.proto);
# no maximum is documented: the emulator caps it there.
_PAGING = Paging(default=5000, maximum=5000)


def money(usd: str) -> money_pb2.Money:
    """A decimal dollar string as Money (``units`` + ``nanos`` / 1e9)."""
    amount = Decimal(usd)
    units = int(amount)
    nanos = int((amount - units) * 1_000_000_000)
    return money_pb2.Money(currency_code=CURRENCY, units=units, nanos=nanos)


def load_prices() -> dict[str, Any]:
    text = resources.files("govctl.emulator").joinpath("data/prices.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _sku(rec: dict[str, Any], display_name: str, effective: timestamp_pb2.Timestamp) -> Any:
    expression = billing_v1.PricingExpression(
        usage_unit=rec["usage_unit"],
        usage_unit_description=rec["usage_unit_description"],
        base_unit=rec["base_unit"],
        base_unit_description=rec["base_unit_description"],
        base_unit_conversion_factor=rec["base_unit_conversion_factor"],
        display_quantity=rec["display_quantity"],
        tiered_rates=[
            billing_v1.PricingExpression.TierRate(
                start_usage_amount=t["start_usage_amount"], unit_price=money(t["usd"])
            )
            for t in rec["tiered_rates"]
        ],
    )
    geo = getattr(billing_v1.GeoTaxonomy.Type, rec["geo_taxonomy"])
    return billing_v1.Sku(
        name=f"services/{rec['service']}/skus/{rec['sku_id']}",
        sku_id=rec["sku_id"],
        description=rec["description"],
        category=billing_v1.Category(service_display_name=display_name, **rec["category"]),
        service_regions=rec["service_regions"],
        pricing_info=[
            billing_v1.PricingInfo(
                effective_time=effective,
                summary=rec["summary"],
                pricing_expression=expression,
                # Free tiers are per billing account per month.
                aggregation_info=billing_v1.AggregationInfo(
                    aggregation_level=billing_v1.AggregationInfo.AggregationLevel.ACCOUNT,
                    aggregation_interval=billing_v1.AggregationInfo.AggregationInterval.MONTHLY,
                    aggregation_count=1,
                ),
                currency_conversion_rate=1.0,
            )
        ],
        service_provider_name="Google",
        geo_taxonomy=billing_v1.GeoTaxonomy(
            type_=geo, regions=[] if rec["geo_taxonomy"] == "GLOBAL" else rec["service_regions"]
        ),
    )


class BillingService(Service):
    key = "billing"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        data = load_prices()
        effective = timestamp_pb2.Timestamp()
        effective.FromJsonString(data["effective_time"])
        self._services = [
            billing_v1.Service(
                name=f"services/{s['service_id']}",
                service_id=s["service_id"],
                display_name=s["display_name"],
                business_entity_name="businessEntities/GCP",
            )
            for s in data["services"]
        ]
        names = {s.service_id: s.display_name for s in self._services}
        self._skus: dict[str, list[Any]] = {sid: [] for sid in names}
        for rec in data["skus"]:
            self._skus[rec["service"]].append(_sku(rec, names[rec["service"]], effective))
        for skus in self._skus.values():
            skus.sort(key=lambda s: s.description)

    def list_services(self, request: billing_v1.ListServicesRequest, context: Any) -> Any:
        return _PAGING.respond(billing_v1.ListServicesResponse, "services", self._services, request)

    def list_skus(self, request: billing_v1.ListSkusRequest, context: Any) -> Any:
        m = matched(
            _SERVICE_RE,
            request.parent,
            f"invalid parent {request.parent!r}: want services/SERVICE_ID (e.g. "
            "services/152E-C115-5142)",
        )
        if m.group(1) not in self._skus:
            raise not_found(f"Service {request.parent} not found.")
        if request.currency_code and request.currency_code.upper() != CURRENCY:
            raise invalid_argument(
                f"currency {request.currency_code} is not served by the emulator: use USD"
            )
        return _PAGING.respond(billing_v1.ListSkusResponse, "skus", self._skus[m.group(1)], request)

    def rpcs(self) -> list[Bound]:
        api = gapic_api("google.cloud.billing_v1.services.cloud_catalog")
        return [api.bind({"ListServices": self.list_services, "ListSkus": self.list_skus})]
