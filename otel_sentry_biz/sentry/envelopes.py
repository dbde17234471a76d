"""Envelopes as Sentry ingests them, built on sentry-sdk's public ``Envelope``/``Item``.

An event's payload is encoded here (:func:`event_json`) and handed to sentry-sdk's ``Item``
as bytes; sentry-sdk writes the envelope's line format around it.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Mapping
from typing import Any, Optional

from sentry_sdk.envelope import Envelope, Item, PayloadRef

try:  # optional: the same JSON, ~15x faster than the standard library's encoder
    import orjson
except ImportError:  # pragma: no cover - exercised by the tests with orjson hidden
    orjson = None  # type: ignore[assignment]

#: Sentry data categories, as used by rate limits and client reports.
TRANSACTION = "transaction"
ERROR = "error"


def data_category(event: Mapping[str, Any]) -> str:
    """The rate-limit / client-report category of an event."""
    return TRANSACTION if event.get("type") == "transaction" else ERROR


def build_envelope(
    event: dict[str, Any],
    *,
    trace_header: Optional[Mapping[str, str]] = None,
    sent_at: Optional[datetime.datetime] = None,
) -> Envelope:
    """One event (transaction or error) in an envelope, with its event id and trace header.

    ``sent_at`` is left out unless given: Relay corrects event timestamps by the difference
    between it and the time of arrival, and an envelope built now may be sent much later
    (after an outage, from the outbox), which would shift its timestamps wrongly.
    """
    headers: dict[str, Any] = {"event_id": event["event_id"]}
    if sent_at is not None:
        headers["sent_at"] = _iso(sent_at)
    if trace_header:
        headers["trace"] = dict(trace_header)
    item_type = "transaction" if event.get("type") == "transaction" else "event"
    item = Item(
        payload=PayloadRef(bytes=event_json(event)),
        type=item_type,
        content_type="application/json",
    )
    return Envelope(headers=headers, items=[item])


def event_json(event: Mapping[str, Any]) -> bytes:
    """``event`` as compact UTF-8 JSON: the payload of its envelope item.

    With orjson installed it encodes the event (encoding was the exporter's largest single
    cost with the standard library, benchmarks/conversion_cost.py); whatever orjson refuses
    (a key that is not a string, an integer beyond 64 bits, a lone surrogate, deep nesting)
    is encoded as sentry-sdk encodes it, ``json.dumps(allow_nan=False)``. The two decode to the
    same value: orjson writes non-ASCII text as UTF-8 where the standard library escapes it,
    and it would write a NaN as ``null`` where the standard library raises, which cannot
    happen here: every float of an event is finite or was made text by ``tags.json_safe``.
    """
    if orjson is not None:
        try:
            return orjson.dumps(event)
        except TypeError:  # orjson.JSONEncodeError is one
            pass
    return json.dumps(event, allow_nan=False, separators=(",", ":")).encode("utf-8")


def client_report_envelope(
    discarded: Mapping[tuple[str, str], int], timestamp: datetime.datetime
) -> Envelope:
    """A client report telling Sentry what we dropped, by (reason, category)."""
    report = {
        "timestamp": _iso(timestamp),
        "discarded_events": [
            {"reason": reason, "category": category, "quantity": quantity}
            for (reason, category), quantity in sorted(discarded.items())
            if quantity > 0
        ],
    }
    return Envelope(headers={}, items=[Item(payload=PayloadRef(json=report), type="client_report")])


def serialize(envelope: Envelope) -> bytes:
    out = io.BytesIO()
    envelope.serialize_into(out)
    return out.getvalue()


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate replaced by "?", keys included.

    Text decoded with ``surrogateescape`` (file names, raw headers) holds lone surrogates;
    JSON writes them as ``\\udcxx`` escapes, which Relay rejects with the whole item. Only
    called when a serialized envelope contains such an escape, which is rare.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_lone_surrogates(item) for item in value]
    return value


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
