"""Sentry span status: the HTTP, gRPC and OTel tables, exhaustively."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode
from sentry_relay import SPAN_STATUS_NAME_TO_CODE, StoreNormalizer

from otel_sentry_biz.sentry.status import (
    GRPC_CODE_BY_NAME,
    GRPC_STATUS,
    HTTP_STATUS,
    HTTP_STATUS_ATTRIBUTES,
    HTTP_STATUS_BY_CLASS,
    OTEL_STATUS,
    REFINED_OVER_SENTRY_SDK,
    sentry_status,
)
from tests.relay_oracle import meta_errors

UNSET, OK, ERROR = StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR

SENTRY_STATUSES = {
    "ok",
    "cancelled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal_error",
    "unavailable",
    "data_loss",
    "unauthenticated",
}


def _every_table_value():
    yield from HTTP_STATUS.values()
    yield from HTTP_STATUS_BY_CLASS.values()
    yield from GRPC_STATUS.values()
    yield from OTEL_STATUS.values()


def test_every_status_in_the_tables_is_one_relay_knows():
    values = set(_every_table_value())
    assert values <= set(SPAN_STATUS_NAME_TO_CODE)
    assert values <= SENTRY_STATUSES


def test_grpc_table_is_relays_code_table():
    # Relay's own numbering is gRPC's: the table must agree with it code for code.
    for code, status in GRPC_STATUS.items():
        assert SPAN_STATUS_NAME_TO_CODE[status] == code
    assert sorted(GRPC_STATUS) == list(range(17))


@pytest.mark.parametrize("attribute", HTTP_STATUS_ATTRIBUTES)
def test_every_http_code_maps_by_table_then_by_class(attribute):
    for code in range(100, 600):
        expected = HTTP_STATUS.get(code, HTTP_STATUS_BY_CLASS[code // 100])
        assert sentry_status(UNSET, {attribute: code}) == expected, code
        assert sentry_status(UNSET, {attribute: str(code)}) == expected, code


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, "ok"),
        (301, "ok"),
        (400, "invalid_argument"),
        (401, "unauthenticated"),
        (403, "permission_denied"),
        (404, "not_found"),
        (409, "already_exists"),
        (418, "invalid_argument"),
        (429, "resource_exhausted"),
        (499, "cancelled"),
        (500, "internal_error"),
        (501, "unimplemented"),
        (503, "unavailable"),
        (504, "deadline_exceeded"),
    ],
)
def test_well_known_http_codes(code, status):
    assert sentry_status(UNSET, {"http.response.status_code": code}) == status


def test_http_codes_differ_from_sentry_sdk_only_where_documented():
    from sentry_sdk.tracing import get_span_status_from_http_code

    differ = {
        code
        for code in range(100, 600)
        if sentry_status(UNSET, {"http.status_code": code}) != get_span_status_from_http_code(code)
    }
    assert differ == REFINED_OVER_SENTRY_SDK


@pytest.mark.parametrize("code", sorted(GRPC_STATUS))
def test_every_grpc_code_number_and_name(code):
    status = GRPC_STATUS[code]
    assert sentry_status(UNSET, {"rpc.grpc.status_code": code}) == status
    names = [name for name, value in GRPC_CODE_BY_NAME.items() if value == code]
    assert len(names) == 1
    grpc = {"rpc.system.name": "grpc", "rpc.response.status_code": names[0]}
    connect = {"rpc.system.name": "connectrpc", "rpc.response.status_code": names[0].lower()}
    assert sentry_status(UNSET, grpc) == status
    assert sentry_status(UNSET, connect) == status


def test_rpc_response_status_of_other_rpc_systems_is_ignored():
    # A JSON-RPC error code is not a gRPC code: 5 must not read as not_found.
    attributes = {"rpc.system.name": "jsonrpc", "rpc.response.status_code": "5"}
    assert sentry_status(UNSET, attributes) == "ok"
    assert sentry_status(ERROR, attributes) == "internal_error"


@pytest.mark.parametrize(("otel", "expected"), list(OTEL_STATUS.items()))
def test_otel_status_is_the_last_resort(otel, expected):
    assert sentry_status(otel, {}) == expected


def test_http_code_wins_over_grpc_code_and_otel_status():
    attributes = {"http.status_code": 404, "rpc.grpc.status_code": 14}
    assert sentry_status(ERROR, attributes) == "not_found"


def test_grpc_code_wins_over_otel_status():
    assert sentry_status(ERROR, {"rpc.grpc.status_code": 4}) == "deadline_exceeded"


def test_ok_code_does_not_hide_an_otel_error():
    assert sentry_status(ERROR, {"http.response.status_code": 200}) == "internal_error"
    assert sentry_status(ERROR, {"rpc.grpc.status_code": 0}) == "internal_error"
    assert sentry_status(OK, {"http.response.status_code": 200}) == "ok"


def test_stable_http_attribute_wins_over_the_old_one():
    attributes = {"http.response.status_code": 503, "http.status_code": 200}
    assert sentry_status(UNSET, attributes) == "unavailable"


@pytest.mark.parametrize(
    "value", [0, 99, 600, 1000, -1, True, None, "", "abc", "²", "1" * 5000, 404.5, float("nan")]
)
def test_values_that_are_not_http_codes_fall_through_to_the_otel_status(value):
    assert sentry_status(ERROR, {"http.response.status_code": value}) == "internal_error"
    assert sentry_status(UNSET, {"http.response.status_code": value}) == "ok"


def test_integral_float_and_padded_string_codes_are_read():
    assert sentry_status(UNSET, {"http.status_code": 404.0}) == "not_found"
    assert sentry_status(UNSET, {"http.status_code": " 429 "}) == "resource_exhausted"
    assert sentry_status(UNSET, {"rpc.grpc.status_code": "16"}) == "unauthenticated"


@pytest.mark.parametrize("value", [17, -1, "NOPE", 2.5, False])
def test_unknown_grpc_codes_fall_through(value):
    assert sentry_status(ERROR, {"rpc.grpc.status_code": value}) == "internal_error"


def test_a_finished_sdk_span_gets_its_status_from_the_read_only_attributes():
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("rpc", attributes={"rpc.grpc.status_code": 5}) as span:
        span.set_status(Status(StatusCode.ERROR))
    assert not isinstance(span.attributes, dict)
    assert sentry_status(span.status.status_code, span.attributes) == "not_found"


@pytest.mark.parametrize("status", sorted(set(_every_table_value())))
def test_relay_accepts_every_status_on_a_transaction(status):
    now = time.time()
    event = {
        "event_id": "a" * 32,
        "type": "transaction",
        "transaction": "t",
        "transaction_info": {"source": "custom"},
        "start_timestamp": now - 1,
        "timestamp": now,
        "contexts": {"trace": {"trace_id": "b" * 32, "span_id": "c" * 16, "status": status}},
        "spans": [],
    }
    normalized = StoreNormalizer().normalize_event(event)
    assert not meta_errors(normalized)
    assert normalized["contexts"]["trace"]["status"] == status
