"""Envelopes as Sentry ingests them: parsed back with sentry-sdk's own Envelope."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from sentry_sdk.envelope import Envelope

from otel_sentry_biz.sentry import envelopes
from otel_sentry_biz.sentry.envelopes import ERROR, TRANSACTION, data_category
from tests.delivery.helpers import error_event, transaction_event

TRACE = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "public_key": "abc123",
    "sample_rate": "1.0",
    "sampled": "true",
    "environment": "staging",
    "transaction": "GET /orders/{id}",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def round_trip(envelope: Envelope) -> Envelope:
    return Envelope.deserialize(envelopes.serialize(envelope))


def test_error_envelope_parses_back_with_event_id_sent_at_and_trace() -> None:
    event = error_event("card refused")
    moment = datetime.datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=datetime.timezone.utc)
    parsed = round_trip(envelopes.build_envelope(event, trace_header=TRACE, sent_at=moment))
    assert parsed.headers["event_id"] == event["event_id"]
    assert parsed.headers["sent_at"] == "2024-05-01T12:00:01.250000Z"
    assert ISO_UTC.match(parsed.headers["sent_at"])
    assert parsed.headers["trace"] == TRACE
    (item,) = parsed.items
    assert item.type == "event"
    assert item.data_category == "error"  # what sentry-sdk's own rate limiting would use
    assert item.payload.json == event


def test_transaction_envelope_parses_back_as_a_transaction_item() -> None:
    event = transaction_event("POST /invoices")
    parsed = round_trip(envelopes.build_envelope(event, trace_header=TRACE))
    assert parsed.headers["event_id"] == event["event_id"]
    (item,) = parsed.items
    assert item.type == "transaction"
    assert item.data_category == "transaction"
    assert item.payload.json["transaction"] == "POST /invoices"
    assert item.payload.json == event


def test_the_serialized_form_is_sentrys_line_format() -> None:
    event = error_event()
    raw = envelopes.serialize(envelopes.build_envelope(event))
    header_line, item_header, payload = raw.split(b"\n")[:3]
    assert json.loads(header_line)["event_id"] == event["event_id"]
    assert json.loads(item_header)["type"] == "event"
    assert json.loads(item_header)["length"] == len(payload)
    assert json.loads(payload) == event


def test_only_the_event_id_by_default() -> None:
    # No sent_at unless given: an envelope may wait in the outbox for a long time, and Relay
    # would shift the event's timestamps by the delay between sent_at and arrival.
    parsed = round_trip(envelopes.build_envelope(error_event()))
    assert "trace" not in parsed.headers
    assert "sent_at" not in parsed.headers
    assert set(parsed.headers) == {"event_id"}


def test_sent_at_is_the_given_moment_in_utc() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    parsed = round_trip(envelopes.build_envelope(error_event(), sent_at=moment))
    assert parsed.headers["sent_at"] == "2024-05-01T12:30:15.123456Z"


def test_client_report_lists_discarded_events_sorted_without_zeros() -> None:
    moment = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    discarded = {
        ("send_error", "error"): 2,
        ("queue_overflow", "transaction"): 5,
        ("queue_overflow", "error"): 0,
        ("queue_overflow", "span"): 1,
    }
    parsed = round_trip(envelopes.client_report_envelope(discarded, moment))
    (item,) = parsed.items
    assert item.type == "client_report"
    assert parsed.headers == {}
    assert json.loads(item.payload.get_bytes()) == {
        "timestamp": "2024-05-01T12:00:00.000000Z",
        "discarded_events": [
            {"reason": "queue_overflow", "category": "span", "quantity": 1},
            {"reason": "queue_overflow", "category": "transaction", "quantity": 5},
            {"reason": "send_error", "category": "error", "quantity": 2},
        ],
    }


@pytest.mark.parametrize(
    ("event", "category"),
    [
        ({"type": "transaction"}, TRANSACTION),
        ({"type": "error"}, ERROR),
        ({"type": "default"}, ERROR),  # messages and business violations count as errors
        ({}, ERROR),
        (transaction_event(), "transaction"),
        (error_event(), "error"),
    ],
)
def test_data_category(event: dict, category: str) -> None:
    assert data_category(event) == category
