"""The ERP's JSON API: one or two views per module, over erp/operations.py.

``Http404`` and ``PermissionDenied`` are answers (404, 403), not errors: the request span
records the status and Sentry gets no issue for them.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import authenticate, login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import otel_sentry_biz as biz
from erp import operations
from erp.models import SalesOrder

#: Exceptions a view raises to answer 404 / 403: not failures of the endpoint.
ANSWERS = (Http404, PermissionDenied)


def payload(request: HttpRequest) -> dict[str, Any]:
    """The JSON body of an authenticated request; 403 for anonymous callers."""
    if not request.user.is_authenticated:
        raise PermissionDenied("log in first")
    return json.loads(request.body or b"{}")


@csrf_exempt
@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return JsonResponse({"error": "wrong username or password"}, status=401)
    login(request, user)
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
@biz.api_endpoint("sales_api", expected=ANSWERS)
def sales_orders(request: HttpRequest) -> HttpResponse:
    data = payload(request)
    order = operations.create_sales_order(data["customer"], data["sku"], int(data["quantity"]))
    if order is None:
        return JsonResponse({"error": "insufficient stock"}, status=409)
    return JsonResponse({"order": order.pk}, status=201)


@require_GET
@biz.api_endpoint("sales_api", expected=ANSWERS)
def sales_order(request: HttpRequest, order_id: int) -> HttpResponse:
    payload(request)
    order = get_object_or_404(SalesOrder, pk=order_id)
    return JsonResponse({"order": order.pk, "sku": order.product.sku, "quantity": order.quantity})


@csrf_exempt
@require_POST
def inventory_adjustments(request: HttpRequest) -> HttpResponse:
    data = payload(request)
    stock = operations.adjust_stock(data["sku"], int(data["delta"]), data["reason"])
    return JsonResponse({"sku": data["sku"], "stock": stock})


@csrf_exempt
@require_POST
def production_runs(request: HttpRequest) -> HttpResponse:
    data = payload(request)
    return JsonResponse(
        operations.start_production_run(data["sku"], int(data["quantity"])), status=201
    )


@csrf_exempt
@require_POST
def quality_checks(request: HttpRequest) -> HttpResponse:
    data = payload(request)
    if not request.user.is_staff:
        raise PermissionDenied("only quality inspectors record checks")
    return JsonResponse(
        operations.record_quality_check(data["sku"], [float(m) for m in data["measurements"]]),
        status=201,
    )
