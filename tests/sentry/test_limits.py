"""fit_event: every field Relay limits is cut visibly, nothing else is touched."""

from __future__ import annotations

import json

from otel_sentry_biz.sentry.limits import MAX_CONTEXT_BYTES, fit_event
from tests.relay_oracle import assert_valid


def test_long_fields_are_cut_with_an_ellipsis_and_pass_relay() -> None:
    event = {
        "event_id": "a" * 32,
        "timestamp": 1.0,
        "platform": "python",
        "exception": {"values": [{"type": "E" * 300, "module": "m", "value": "v" * 9000}]},
        "logentry": {"formatted": "f" * 9000},
        "breadcrumbs": {
            "values": [{"timestamp": 1.0, "message": "b" * 3000, "data": {"x": "d" * 3000}}]
        },
        "contexts": {
            "span": {"name": "n" * 9000, "attributes": {f"k{i}": "v" * 200 for i in range(100)}},
            "trace": {"trace_id": "b" * 32, "span_id": "c" * 16},
        },
    }
    fitted = fit_event(event)
    value = fitted["exception"]["values"][0]
    assert len(value["type"]) == 256 and value["type"].endswith("...")
    assert len(value["value"]) == 8192 and value["module"] == "m"
    assert len(fitted["logentry"]["formatted"]) == 8192
    assert len(fitted["breadcrumbs"]["values"][0]["message"]) == 2048
    assert len(json.dumps(fitted["contexts"]["span"])) <= MAX_CONTEXT_BYTES
    assert fitted["contexts"]["trace"] == {"trace_id": "b" * 32, "span_id": "c" * 16}
    normalized = assert_valid(fitted)
    assert "_meta" not in json.dumps(normalized)


def test_small_events_are_left_as_they_are() -> None:
    event = {"logentry": {"formatted": "ok"}, "contexts": {"span": {"name": "GET /"}}}
    assert fit_event(json.loads(json.dumps(event))) == event
