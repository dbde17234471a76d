"""Envelopes as Sentry ingests them, built on sentry-sdk's public ``Envelope``/``Item``.

An envelope is sentry-sdk's model; its JSON, the event payload and the header lines around
it, is written by :func:`json_bytes` (orjson when installed, else the standard library as
sentry-sdk uses it), in the line format of sentry-sdk's ``Envelope.serialize_into``.
"""

from __future__ import annotations

import datetime
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
        payload=PayloadRef(bytes=json_bytes(event)),
        type=item_type,
        content_type="application/json",
    )
    return Envelope(headers=headers, items=[item])


def json_bytes(value: Any) -> bytes:
    """``value`` (an event, or envelope headers) as compact UTF-8 JSON.

    With orjson installed it encodes the value: with the standard library, encoding was the
    exporter's largest single cost (benchmarks/conversion_cost.py). Whatever orjson refuses
    (a key that is not a string, an integer beyond 64 bits, a lone surrogate, deep nesting)
    is encoded as sentry-sdk encodes it, ``json.dumps(allow_nan=False)``. The two decode to the
    same value: orjson writes non-ASCII text as UTF-8 where the standard library escapes it,
    and it would write a NaN as ``null`` where the standard library raises, which cannot
    happen here: every float of an event is finite or was made text by ``tags.json_safe``.
    """
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is one
            pass
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("utf-8")


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
    """The bytes of ``envelope``, as sentry-sdk's ``Envelope.serialize_into`` lays them out.

    A line of envelope headers; then for each item a line of its headers with the payload's
    ``length``, the payload and a newline. The header lines are written by :func:`json_bytes`
    rather than by sentry-sdk, whose encoder, built anew for each line, cost more than the
    rest of an envelope (benchmarks/conversion_cost.py). Without orjson the bytes are
    sentry-sdk's own; with it, the same JSON (tests/delivery/test_envelopes.py).
    """
    out = [json_bytes(envelope.headers), b"\n"]
    for item in envelope.items:
        payload = item.get_bytes()
        out += (json_bytes({**item.headers, "length": len(payload)}), b"\n", payload, b"\n")
    return b"".join(out)


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
