"""The ERP's business operations, one monitor per module (see erp/monitoring.py).

Each operation is a span named ``<module>.<operation>`` in the request's transaction; its
exceptions are errors tagged ``module``, ``business_impact`` and ``error_category``, and one
that takes longer than its ``threshold_ms`` is a ``slow_operation`` issue.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Optional

from django.db import transaction
from django.db.models import F

import otel_sentry_biz as biz
from erp.models import Product, SalesOrder
from erp.monitoring import inventory, production, quality, sales

#: Material planning takes this long per unit: a large run is planned past its threshold.
PLANNING_SECONDS_PER_UNIT = 0.001
#: Inspection specifications on file: sku -> (lowest, highest) acceptable measurement.
SPECIFICATIONS = {"PUMP-100": (9.8, 10.2)}
_run_numbers = itertools.count(1)


class SpecificationMissing(LookupError):
    """No inspection specification is on file for the product: the check cannot be judged."""


@sales.operation("create_order", threshold_ms=1500)
def create_sales_order(customer: str, sku: str, quantity: int) -> Optional[SalesOrder]:
    """Take an order when the stock covers it; otherwise report it and take nothing."""
    biz.record(customer=customer, sku=sku, quantity=quantity)
    with transaction.atomic():
        product = Product.objects.get(sku=sku)
        if product.stock < quantity:
            # The seed's capture_business_logic_error: one issue per rule, facts as context.
            biz.capture_business_error(
                "Insufficient stock for order",
                rule="stock_available",
                operation="create_sales_order",
                sku=sku,
                requested=quantity,
                available=product.stock,
            )
            return None
        reserve_stock(product, quantity)
        return SalesOrder.objects.create(product=product, customer=customer, quantity=quantity)


@biz.db_operation("reserve_stock", table="erp_product", system="sqlite")
def reserve_stock(product: Product, quantity: int) -> None:
    Product.objects.filter(pk=product.pk).update(stock=F("stock") - quantity)


@inventory.operation("adjust_stock")
def adjust_stock(sku: str, delta: int, reason: str) -> int:
    """Book a stock correction (a count, a return, breakage); the new stock level."""
    biz.record(sku=sku, delta=delta, reason=reason)
    with transaction.atomic():
        updated = Product.objects.filter(sku=sku).update(stock=F("stock") + delta)
        if not updated:
            raise Product.DoesNotExist(f"no product {sku}")
        return Product.objects.get(sku=sku).stock


@production.operation("start_run", threshold_ms=250)
def start_production_run(sku: str, quantity: int) -> dict[str, Any]:
    """Plan the materials of a production run and open it."""
    biz.record(sku=sku, quantity=quantity)
    Product.objects.get(sku=sku)  # the product must exist before its materials are planned
    time.sleep(quantity * PLANNING_SECONDS_PER_UNIT)  # material planning (simulated)
    return {"run": f"RUN-{next(_run_numbers):04d}", "sku": sku, "quantity": quantity}


@quality.operation("record_check")
def record_quality_check(sku: str, measurements: list[float]) -> dict[str, Any]:
    """Judge a batch's measurements against the product's specification."""
    biz.record(sku=sku, samples=len(measurements))
    if sku not in SPECIFICATIONS:
        raise SpecificationMissing(f"no inspection specification on file for {sku}")
    lowest, highest = SPECIFICATIONS[sku]
    rejected = [m for m in measurements if not lowest <= m <= highest]
    return {"sku": sku, "passed": not rejected, "rejected": rejected}
