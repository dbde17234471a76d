"""EnvelopeSender against a real LocalReceiver on 127.0.0.1: real sockets, scripted answers."""

from __future__ import annotations

import gzip
import logging
import time
from typing import Any, Callable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from sentry_sdk.envelope import Envelope

from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.sentry.outbox import QUEUE_OVERFLOW, MemoryOutbox
from otel_sentry_biz.sentry.sender import SEND_ERROR, EnvelopeSender
from tests.delivery.helpers import (
    SECRET,
    Clock,
    RecordingReceiver,
    errors,
    eventually,
    put_all,
    received_ids,
    secret_dsn,
    transactions,
)

MakeSender = Callable[..., "tuple[EnvelopeSender, MemoryOutbox]"]
SENDER_LOG = "otel_sentry_biz.sentry.sender"


def ids(entries: list[Any]) -> list[str]:
    return [entry.event_id for entry in entries]


def discarded(receiver: RecordingReceiver) -> dict[tuple[str, str], int]:
    """Every client report's discarded events, summed by (reason, category)."""
    total: dict[tuple[str, str], int] = {}
    for report in receiver.client_reports():
        for row in report["discarded_events"]:
            key = (row["reason"], row["category"])
            total[key] = total.get(key, 0) + row["quantity"]
    return total


# -- normal delivery ------------------------------------------------------------------------


def test_delivers_envelopes_authenticated_by_the_public_key_only(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(dsn=secret_dsn(receiver))
    sent = errors(2) + transactions(1)
    put_all(outbox, sender, sent)
    assert sender.flush(5.0)
    assert sorted(received_ids(receiver)) == sorted(ids(sent))
    assert sorted(received_ids(receiver, "transaction")) == ids(sent[2:])
    assert receiver.rejected == 0
    assert len(receiver.seen) == 3
    for headers, _ in receiver.seen:
        auth = headers["X-Sentry-Auth"]
        assert auth.startswith("Sentry ")
        assert f"sentry_key={receiver.public_key}" in auth
        assert "sentry_version=7" in auth
        assert "sentry_client=otel-sentry-biz/" in auth
        assert "sentry_secret" not in auth
        assert SECRET not in str(headers)
        assert headers["Content-Type"] == "application/x-sentry-envelope"
    stats = sender.stats()
    assert stats["sent"] == {"error": 2, "transaction": 1}
    assert stats["queued"] == 0
    assert stats["dropped"] == {}
    assert stats["last_success_at"] is not None
    assert stats["last_error"] is None


def test_big_envelopes_go_gzipped_and_are_accepted(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender()
    big = errors(2, size=50_000)
    put_all(outbox, sender, big)
    assert sender.flush(5.0)
    assert sorted(received_ids(receiver)) == sorted(ids(big))
    assert receiver.rejected == 0
    for headers, body in receiver.seen:
        assert headers["Content-Encoding"] == "gzip"
        assert body[:2] == b"\x1f\x8b"  # really gzip on the wire, and much smaller
        assert len(body) < 10_000 < len(gzip.decompress(body))
        envelope = Envelope.deserialize(gzip.decompress(body))
        assert envelope.headers["event_id"] in ids(big)


def test_many_envelopes_are_delivered_quickly(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(batch_size=8)
    sent = errors(60) + transactions(60)
    started = time.monotonic()
    put_all(outbox, sender, sent)
    assert sender.flush(10.0)
    # ~0.1 s; a receiver that answers in two writes without TCP_NODELAY takes ~5 s (Nagle)
    assert time.monotonic() - started < 2.0
    assert sorted(received_ids(receiver)) == sorted(ids(sent))
    assert receiver.requests == 120


# -- 429 and X-Sentry-Rate-Limits -----------------------------------------------------------


def test_429_with_retry_after_pauses_everything_then_delivers_the_same_events(
    receiver: RecordingReceiver, make_sender: MakeSender, clock: Clock
) -> None:
    sender, outbox = make_sender()
    receiver.respond_with(429, {"Retry-After": "60"})
    first = errors(1)
    put_all(outbox, sender, first)
    assert receiver.wait_for(lambda r: r.requests == 1, timeout=5)
    later = errors(2) + transactions(2)
    put_all(outbox, sender, later)
    assert not sender.flush(0.3)  # nothing goes out while the limit holds
    assert receiver.requests == 1
    assert receiver.events() == []
    stats = sender.stats()
    assert stats["queued"] == 5
    assert stats["rate_limited"]["*"] == pytest.approx(60, abs=1)
    assert "rate limited" in stats["last_error"]

    clock.advance(61)
    sender.notify()
    assert sender.flush(5.0)
    delivered = received_ids(receiver)
    assert sorted(delivered) == sorted(ids(first + later))  # same event ids, no duplicates
    assert receiver.requests == 6
    assert sender.stats()["rate_limited"] == {}
    assert sender.stats()["dropped"] == {}


@pytest.mark.parametrize("status", [429, 200])
def test_transaction_rate_limit_lets_errors_flow_while_transactions_wait(
    receiver: RecordingReceiver, make_sender: MakeSender, clock: Clock, status: int
) -> None:
    sender, outbox = make_sender()
    receiver.respond_with(status, {"X-Sentry-Rate-Limits": "60:transaction:organization"})
    probe = transactions(1)
    put_all(outbox, sender, probe)
    assert eventually(lambda: "transaction" in sender.stats()["rate_limited"])
    errs, txs = errors(3), transactions(2)
    put_all(outbox, sender, txs + errs)
    assert receiver.wait_for(lambda r: len(r.events("event")) == 3, timeout=5)
    assert not sender.flush(0.2)
    assert sorted(received_ids(receiver, "event")) == sorted(ids(errs))
    waiting = txs if status == 200 else probe + txs  # a 200 delivered the probe anyway
    assert len(outbox) == len(waiting)
    assert received_ids(receiver, "transaction") == ([] if status == 429 else ids(probe))
    assert set(sender.stats()["rate_limited"]) == {"transaction"}

    clock.advance(61)
    sender.notify()
    assert sender.flush(5.0)
    assert sorted(received_ids(receiver, "transaction")) == sorted(ids(probe + txs))
    assert sender.stats()["sent"] == {"error": 3, "transaction": 3}


def test_transactions_held_by_a_rate_limit_overflow_first_and_are_reported(
    receiver: RecordingReceiver, make_sender: MakeSender, clock: Clock
) -> None:
    sender, outbox = make_sender(MemoryOutbox(max_items=4))
    receiver.respond_with(429, {"X-Sentry-Rate-Limits": "60:transaction"})
    txs = transactions(6)
    put_all(outbox, sender, txs[:1])
    assert eventually(lambda: "transaction" in sender.stats()["rate_limited"])
    put_all(outbox, sender, txs[1:])  # 6 transactions for 4 places: the 2 oldest go
    (error,) = errors(1)
    put_all(outbox, sender, [error])  # an error pushes one more transaction out
    assert receiver.wait_for(lambda r: received_ids(r) == [error.event_id], timeout=5)
    assert sender.stats()["dropped"] == {f"{QUEUE_OVERFLOW}:transaction": 3}

    assert not sender.flush(0.2)  # a flush reports drops even while transactions wait
    assert receiver.wait_for(lambda r: len(r.client_reports()) == 1, timeout=5)
    assert discarded(receiver) == {(QUEUE_OVERFLOW, "transaction"): 3}

    clock.advance(61)
    sender.notify()
    assert sender.flush(5.0)
    assert received_ids(receiver, "transaction") == ids(txs[3:])  # the newest survived


def test_429_limiting_other_categories_does_not_make_the_sender_spin(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender()
    receiver.respond_with(429, {"X-Sentry-Rate-Limits": "60:profile;replay"}, times=100_000)
    put_all(outbox, sender, errors(1))
    time.sleep(0.5)
    assert receiver.requests <= 3, f"{receiver.requests} requests in 0.5 s"


# -- 5xx, timeouts, connection errors -------------------------------------------------------


def test_500_backs_off_then_delivers_each_event_once(
    receiver: RecordingReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=SENDER_LOG)
    sender, outbox = make_sender(backoff_base=0.05, backoff_cap=1.0)
    receiver.respond_with(500, times=3)
    sent = errors(3) + transactions(2)
    started = time.monotonic()
    put_all(outbox, sender, sent)
    assert sender.flush(5.0)
    # three failures wait at least 0.05 * (1 + 2 + 4) * 0.5 (jitter) = 0.175 s
    assert time.monotonic() - started >= 0.17
    assert receiver.requests == 3 + 5
    delivered = received_ids(receiver)
    assert sorted(delivered) == sorted(ids(sent))
    assert len(set(delivered)) == len(delivered)
    assert sender.stats()["dropped"] == {}
    assert "HTTP 500" in sender.stats()["last_error"]
    assert any("HTTP 500" in r.getMessage() for r in caplog.records)


def test_a_failing_sentry_is_not_hammered(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(backoff_base=0.1, backoff_cap=1.0)
    receiver.respond_with(503, times=100_000)
    put_all(outbox, sender, errors(5))
    time.sleep(0.6)
    # backoffs of at least 0.05, 0.1, 0.2, 0.4 s: no more than 4 attempts fit in 0.6 s
    assert 1 <= receiver.requests <= 4
    assert sender.stats()["backoff_seconds"] > 0
    assert sender.stats()["queued"] == 5


def test_a_timed_out_delivery_is_retried_with_the_same_event_id(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(timeout=0.2)
    receiver.respond_with(200, delay=0.5)  # kept by the receiver, but after we gave up
    sent = errors(1)
    put_all(outbox, sender, sent)
    assert sender.flush(5.0)
    assert receiver.wait_for(lambda r: len(r.events()) == 2, timeout=5)
    assert received_ids(receiver) == ids(sent) * 2  # a duplicate Sentry can dedupe by id
    assert receiver.requests == 2
    assert "talking to" in str(sender.stats()["last_error"])  # a timeout, then a retry


def test_everything_is_delivered_after_the_receiver_restarts_on_the_same_port(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender()
    before = errors(1)
    put_all(outbox, sender, before)
    assert sender.flush(5.0)  # a keep-alive connection is open now
    port = receiver.port
    receiver.stop()
    during = errors(2) + transactions(2)
    put_all(outbox, sender, during)
    assert not sender.flush(0.3)
    assert len(outbox) == 4
    assert received_ids(receiver) == ids(before)
    assert "talking to" in str(sender.stats()["last_error"])

    receiver.start()
    assert receiver.port == port
    assert sender.flush(5.0)
    assert sorted(received_ids(receiver)) == sorted(ids(before + during))
    assert sender.stats()["sent"] == {"error": 3, "transaction": 2}


def test_connection_errors_name_the_endpoint_with_its_port(
    receiver: RecordingReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=SENDER_LOG)
    sender, outbox = make_sender()
    receiver.stop()
    put_all(outbox, sender, errors(1))
    assert eventually(lambda: any("talking to" in r.getMessage() for r in caplog.records))
    assert f"127.0.0.1:{receiver.port}" in sender.stats()["last_error"]


# -- refused envelopes and client reports ---------------------------------------------------


def test_400_is_dropped_counted_reported_and_never_retried(
    receiver: RecordingReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=SENDER_LOG)
    sender, outbox = make_sender()
    receiver.respond_with(400)
    refused, accepted = errors(1), errors(1) + transactions(1)
    put_all(outbox, sender, refused + accepted)
    assert sender.flush(5.0)
    assert sorted(received_ids(receiver)) == sorted(ids(accepted))
    assert receiver.posts()[refused[0].event_id] == 1  # sent once, never again
    stats = sender.stats()
    assert stats["dropped"] == {f"{SEND_ERROR}:error": 1}
    assert "HTTP 400" in stats["last_error"]
    (record,) = caplog.records
    assert refused[0].event_id in record.getMessage()
    assert "HTTP 400" in record.getMessage()

    assert receiver.wait_for(lambda r: len(r.client_reports()) == 1, timeout=5)
    assert discarded(receiver) == {(SEND_ERROR, "error"): 1}
    assert sender.flush(1.0)  # reported once: a second flush sends no second report
    time.sleep(0.2)
    assert len(receiver.client_reports()) == 1
    assert receiver.posts() == {refused[0].event_id: 1, **dict.fromkeys(ids(accepted), 1), None: 1}


def test_a_refused_envelope_is_not_retried_forever(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender()
    receiver.respond_with(413, times=100_000)
    refused = errors(2)
    put_all(outbox, sender, refused)
    assert sender.flush(5.0)
    time.sleep(0.2)
    assert receiver.posts() == {**dict.fromkeys(ids(refused), 1), None: 1}  # + client report
    assert sender.stats()["dropped"] == {f"{SEND_ERROR}:error": 2}


def test_client_reports_are_sent_on_their_interval_without_a_flush(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(client_report_interval=0.1)
    receiver.respond_with(400, times=2)
    put_all(outbox, sender, errors(1) + transactions(1))
    assert receiver.wait_for(lambda r: len(r.client_reports()) >= 1, timeout=5)
    assert discarded(receiver) == {(SEND_ERROR, "error"): 1, (SEND_ERROR, "transaction"): 1}
    report = receiver.client_reports()[0]
    assert report["timestamp"].endswith("Z")
    assert receiver.events() == []


def test_shutdown_delivers_what_is_queued_and_the_last_client_report(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(MemoryOutbox(max_items=2))
    sent = transactions(3)  # one too many: the oldest queued one overflows
    put_all(outbox, sender, sent)
    sender.shutdown(timeout=5.0)
    assert len(outbox) == 0
    assert discarded(receiver) == {(QUEUE_OVERFLOW, "transaction"): 1}
    assert len(received_ids(receiver)) == 2
    sender.shutdown(timeout=5.0)  # idempotent


def test_drops_are_still_reported_when_a_client_report_could_not_be_sent(
    receiver: RecordingReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=SENDER_LOG)
    sender, outbox = make_sender()
    receiver.respond_with(400)
    put_all(outbox, sender, errors(1))
    assert eventually(lambda: sender.stats()["dropped"] == {f"{SEND_ERROR}:error": 1})
    receiver.stop()
    assert sender.flush(1.0)  # the forced client report meets a closed port
    assert eventually(
        lambda: any("client report not delivered" in r.getMessage() for r in caplog.records)
    )
    receiver.start()
    sender.shutdown(timeout=2.0)  # sends a last client report
    assert discarded(receiver) == {(SEND_ERROR, "error"): 1}


# -- flush ----------------------------------------------------------------------------------


def test_flush_is_false_while_sentry_is_slow_and_true_once_drained(
    receiver: RecordingReceiver, make_sender: MakeSender
) -> None:
    sender, outbox = make_sender(timeout=5.0)
    receiver.respond_with(200, delay=0.6)
    put_all(outbox, sender, errors(1))
    started = time.monotonic()
    assert sender.flush(0.1) is False
    assert time.monotonic() - started < 0.4  # flush honours its own timeout
    assert sender.flush(5.0) is True
    assert len(receiver.events()) == 1
    assert sender.flush(0.0) is True  # nothing left: true at once


# -- secrets --------------------------------------------------------------------------------


def test_the_dsn_secret_is_never_logged_or_sent(
    receiver: RecordingReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: ours and any library's
    sender, outbox = make_sender(dsn=secret_dsn(receiver))
    receiver.respond_with(500)
    receiver.respond_with(400)
    put_all(outbox, sender, errors(2))
    assert sender.flush(5.0)
    receiver.stop()
    put_all(outbox, sender, errors(1))
    assert eventually(
        lambda: sum("talking to" in r.getMessage() for r in caplog.records) >= 1, timeout=5
    )
    receiver.start()
    assert sender.flush(5.0)
    sender.shutdown(timeout=1.0)

    messages = [r.getMessage() for r in caplog.records]
    assert any("HTTP 500" in m for m in messages)  # the logs this test reads were written
    assert any("HTTP 400" in m for m in messages)
    assert any("talking to" in m for m in messages)
    assert SECRET not in caplog.text
    assert not [m for m in messages if SECRET in m]
    assert SECRET not in str(sender.stats())
    for headers, _ in receiver.seen:
        assert SECRET not in str(headers)
    assert all(SECRET.encode() not in raw for raw in receiver.raw_envelopes())


def test_exporter_spans_reach_the_receiver_without_the_dsn_secret(
    receiver: RecordingReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("SENTRY_", "OTEL_SENTRY_BIZ_")):
            monkeypatch.delenv(name)
    caplog.set_level(logging.DEBUG)
    exporter = SentrySpanExporter(dsn=secret_dsn(receiver), environment="test")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("delivery-tests")
    try:
        with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER):
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                pass
        with tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as span:
            try:
                raise ConnectionError("payment gateway down")
            except ConnectionError as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR))
        assert exporter.force_flush(5000)
        assert receiver.wait_for(lambda r: len(r.events("transaction")) == 2, timeout=5)
    finally:
        provider.shutdown()
    names = sorted(e["transaction"] for e in receiver.events("transaction"))
    assert names == ["GET /orders/{id}", "POST /pay"]
    assert any(e.get("exception") for e in receiver.events("event"))
    for envelope in receiver.envelopes:
        trace = envelope.headers["trace"]
        assert trace["public_key"] == receiver.public_key
        assert trace["environment"] == "test"
    assert all(SECRET.encode() not in raw for raw in receiver.raw_envelopes())
    assert all(SECRET not in str(headers) for headers, _ in receiver.seen)
    assert SECRET not in caplog.text
    assert exporter.stats()["sent"]["transaction"] == 2
