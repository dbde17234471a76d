"""Envelopes as Sentry ingests them: parsed back with sentry-sdk's own Envelope."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


# -- the payload encoder (orjson when installed, else the standard library) -----------------


def stdlib_json(event: Any) -> bytes:
    """How sentry-sdk encodes a payload (``sentry_sdk.utils.json_dumps``)."""
    return json.dumps(event, allow_nan=False, separators=(",", ":")).encode("utf-8")


_text = st.text(st.characters(exclude_categories=()), max_size=20)  # lone surrogates too
_keys = st.one_of(_text, _text, st.integers(-3, 3), st.none(), st.booleans())
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),  # beyond 64 bits: orjson refuses, the fallback encodes
    st.floats(allow_nan=False, allow_infinity=False),  # events hold finite floats only
    _text,
)
_events = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(_keys, inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(event=st.dictionaries(_keys, _events, max_size=6))
def test_the_payload_decodes_as_sentry_sdks_encoding_would(event: dict) -> None:
    # Whatever orjson refuses (keys that are not text, big integers, lone surrogates) falls
    # back to the standard library; what it takes decodes to the very same value.
    payload = envelopes.json_bytes(event)
    expected = stdlib_json(event)
    assert json.loads(payload) == json.loads(expected)
    if _lone_surrogate_in(event):
        assert payload == expected  # escaped, so the exporter's check for them still sees it


def _lone_surrogate_in(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_lone_surrogate_in(k) or _lone_surrogate_in(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_lone_surrogate_in(item) for item in value)
    return False


def test_the_payload_falls_back_to_the_standard_library_byte_for_byte() -> None:
    for event in ({1: "int key"}, {"big": 2**64}, {"lone": "a\udcffb"}):
        assert envelopes.json_bytes(event) == stdlib_json(event)


def test_a_nan_is_refused_as_sentry_sdk_refuses_it_without_orjson() -> None:
    # Events never hold one (tags.json_safe makes them text); this pins the reason it matters.
    with pytest.raises(ValueError):
        stdlib_json({"x": float("nan")})


def _envelopes() -> list[Envelope]:
    moment = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    event = transaction_event("GET /caf\u00e9 \U0001f600")
    return [
        envelopes.build_envelope(event, trace_header=dict(TRACE, transaction="\u00e9")),
        envelopes.build_envelope(error_event("card refused"), sent_at=moment),
        envelopes.client_report_envelope({("queue_overflow", "error"): 2}, moment),
    ]


def test_the_bytes_are_sentry_sdks_line_format_with_the_same_json() -> None:
    for envelope in _envelopes():
        ours, theirs = envelopes.serialize(envelope), envelope.serialize()
        head, item_line, payload, end = ours.split(b"\n")
        their_head, their_item_line, their_payload, _ = theirs.split(b"\n")
        assert end == b""
        assert json.loads(head) == json.loads(their_head)
        assert json.loads(payload) == json.loads(their_payload)
        item, their_item = json.loads(item_line), json.loads(their_item_line)
        assert item.pop("length") == len(payload)  # UTF-8 may be shorter than escapes
        their_item.pop("length")
        assert item == their_item
        parsed = Envelope.deserialize(ours)  # and sentry-sdk reads it back
        assert parsed.headers == envelope.headers
        assert [i.headers["type"] for i in parsed.items] == [
            i.headers["type"] for i in envelope.items
        ]


@pytest.mark.slow
def test_without_orjson_the_bytes_are_sentry_sdks_own() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from otel_sentry_biz.sentry import envelopes\n"
        "from tests.delivery.test_envelopes import _envelopes\n"
        "assert envelopes.orjson is None\n"
        "for envelope in _envelopes():\n"
        "    assert envelopes.serialize(envelope) == envelope.serialize(), envelope\n"
        "print('same')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "same"
