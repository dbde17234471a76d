"""Fault tests end to end: app spans -> pipeline -> exporter -> sender -> a real receiver.

Each test runs the pipeline ``configure()`` builds (BusinessSpanProcessor ->
BufferedSpanProcessor -> SentrySpanExporter -> EnvelopeSender) against a LocalReceiver on
127.0.0.1 that the test stops, restarts, slows down, scripts or replaces with a socket that
resets connections, and then compares what the receiver kept with what the app produced:

* every request's transaction, and every failed request's error, arrives (within the bound);
* a repeat is only ever the same event id again (Sentry dedupes it), and only where a
  delivery was cut off after the receiver had kept the event;
* whatever did not arrive is exactly what the exporter counted as dropped, and what the
  client reports told the receiver.

The sender gets small timeouts and backoffs and the delivery tests' advanceable clock
(rate limits and Retry-After are waited out by moving the clock, not by sleeping).
"""

from __future__ import annotations

import functools
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from otel_sentry_biz.config import Settings
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.sentry import exporter as exporter_module
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.sentry.outbox import QUEUE_OVERFLOW, MemoryOutbox, Outbox
from otel_sentry_biz.sentry.sender import SEND_ERROR, EnvelopeSender
from otel_sentry_biz.sentry.sqlite_outbox import SQLiteOutbox
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from tests.delivery.helpers import Clock, RecordingReceiver, eventually

SENDER_LOG = "otel_sentry_biz.sentry.sender"


# -- the app and its pipeline ---------------------------------------------------------------


@dataclass
class Sent:
    """What the app produced: trace ids (hex) of its requests, in order, and of its failures."""

    transactions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __add__(self, other: Sent) -> Sent:
        return Sent(self.transactions + other.transactions, self.errors + other.errors)

    @property
    def envelopes(self) -> int:
        return len(self.transactions) + len(self.errors)


class App:
    """An app traced by the pipeline, making request-shaped traces."""

    def __init__(self, provider: TracerProvider, exporter: SentrySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter
        self._tracer = provider.get_tracer("faults")
        self._count = 0

    def requests(self, count: int, *, fail_every: int = 0) -> Sent:
        """``count`` requests (SERVER root + db child); every ``fail_every``-th one raises."""
        sent = Sent()
        for _ in range(count):
            self._count += 1
            fail = bool(fail_every) and self._count % fail_every == 0
            trace_id = self._request(self._count, fail)
            sent.transactions.append(trace_id)
            if fail:
                sent.errors.append(trace_id)
        return sent

    def _request(self, n: int, fail: bool) -> str:
        try:
            with self._tracer.start_as_current_span(
                "GET /orders/{order_id}",
                kind=SpanKind.SERVER,
                attributes={"http.route": "/orders/{order_id}", "url.path": f"/orders/{n}"},
            ) as root:
                trace_id = f"{root.get_span_context().trace_id:032x}"
                with self._tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                    pass
                if fail:
                    raise ValueError(f"order {n} has no price")
        except ValueError:
            pass
        return trace_id

    def flush(self, seconds: float) -> bool:
        """Convert everything the app produced and wait for the outbox to empty."""
        return self.provider.force_flush(int(seconds * 1000))

    def stats(self) -> dict[str, Any]:
        return self.exporter.stats()


MakeApp = Callable[..., App]


class BoundedOutbox(MemoryOutbox):
    """A MemoryOutbox that is truthy when empty.

    Works around a bug (see ``test_an_empty_outbox_given_to_the_exporter_is_used``): the
    exporter takes ``outbox or <default>``, and an empty outbox is falsy by its ``__len__``.
    """

    def __bool__(self) -> bool:
        return True


class BoundedSQLiteOutbox(SQLiteOutbox):
    """The same work-around for the durable outbox."""

    def __bool__(self) -> bool:
        return True


@pytest.fixture
def make_app(
    receiver: RecordingReceiver, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeApp]:
    """The configure() pipeline on a private TracerProvider, with a fast sender."""
    made: list[App] = []

    def make(
        outbox: Optional[Outbox] = None, *, timeout: float = 2.0, outbox_path: Optional[Path] = None
    ) -> App:
        fast_sender = functools.partial(
            EnvelopeSender,
            timeout=timeout,
            backoff_base=0.01,
            backoff_cap=0.05,
            client_report_interval=3600.0,
            clock=clock,
        )
        monkeypatch.setattr(exporter_module, "EnvelopeSender", fast_sender)
        settings = Settings.load(
            {},
            dsn=receiver.dsn,
            traces_sample_rate=1.0,
            environment="test",
            outbox=str(outbox_path) if outbox_path else None,  # OTEL_SENTRY_BIZ_OUTBOX
        )
        exporter = SentrySpanExporter(settings=settings, outbox=outbox)
        provider = TracerProvider()
        provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
        made.append(App(provider, exporter))
        return made[-1]

    yield make
    for app in made:
        app.exporter.shutdown(timeout_millis=300)  # a test that ends mid-outage must not hang
        app.provider.shutdown()


# -- what arrived ---------------------------------------------------------------------------


@dataclass
class Received:
    """What the receiver kept: per kind, the event ids under each trace id, and repeats."""

    transactions: dict[str, set[str]]
    errors: dict[str, set[str]]
    kept: Counter[str]  # event id -> times the receiver kept it

    @property
    def repeats(self) -> dict[str, int]:
        return {event_id: n for event_id, n in self.kept.items() if n > 1}


def received(receiver: RecordingReceiver) -> Received:
    by_kind: dict[str, dict[str, set[str]]] = {"transaction": {}, "event": {}}
    kept: Counter[str] = Counter()
    for kind, traces in by_kind.items():
        for event in receiver.events(kind):
            trace_id = event["contexts"]["trace"]["trace_id"]
            traces.setdefault(trace_id, set()).add(event["event_id"])
            kept[event["event_id"]] += 1
    return Received(by_kind["transaction"], by_kind["event"], kept)


def assert_one_event_id_per_trace(got: Received) -> None:
    """A repeat is only ever the same event again: one event id per trace and kind."""
    for kind, traces in (("transaction", got.transactions), ("error", got.errors)):
        several = {trace: ids for trace, ids in traces.items() if len(ids) != 1}
        assert not several, f"{kind}s arrived under several event ids: {several}"


def assert_all_arrived_once(receiver: RecordingReceiver, sent: Sent) -> Received:
    got = received(receiver)
    assert_one_event_id_per_trace(got)
    assert sorted(got.transactions) == sorted(sent.transactions)
    assert sorted(got.errors) == sorted(sent.errors)
    assert got.repeats == {}
    return got


def discarded(receiver: RecordingReceiver) -> dict[tuple[str, str], int]:
    """What the client reports told the receiver was dropped, summed by (reason, category)."""
    total: Counter[tuple[str, str]] = Counter()
    for report in receiver.client_reports():
        for row in report["discarded_events"]:
            total[(row["reason"], row["category"])] += row["quantity"]
    return dict(total)


def assert_nothing_dropped(app: App) -> None:
    stats = app.stats()
    assert stats["dropped"] == {}
    assert stats["dropped_before_queue"] == {}
    assert stats["queued"] == 0


# -- a) Sentry down for a while, then back --------------------------------------------------


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_receiver_down_then_back_delivers_everything_once(
    receiver: RecordingReceiver, make_app: MakeApp, tmp_path: Path, durable: bool
) -> None:
    app = make_app(outbox_path=tmp_path / "outbox.sqlite3" if durable else None)
    before = app.requests(3)
    assert app.flush(5)  # a kept-alive connection is open when the receiver goes away
    port = receiver.port
    receiver.stop()

    during = app.requests(20, fail_every=5)
    assert not app.flush(0.5)  # nothing can go out
    stats = app.stats()
    assert stats["queued"] == during.envelopes == 24
    assert stats["backoff_seconds"] <= 0.05  # small backoffs: it keeps trying
    assert f"talking to http://127.0.0.1:{port}" in stats["last_error"]
    assert received(receiver).transactions.keys() == set(before.transactions)

    receiver.start()
    assert receiver.port == port
    after = app.requests(2)
    assert app.flush(5)
    assert_all_arrived_once(receiver, before + during + after)
    assert_nothing_dropped(app)
    assert app.stats()["sent"] == {"transaction": 25, "error": 4}
    assert receiver.client_reports() == []


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_an_outage_beyond_the_bound_drops_transactions_exactly_as_counted(
    receiver: RecordingReceiver, make_app: MakeApp, tmp_path: Path, durable: bool
) -> None:
    if durable:
        app = make_app(BoundedSQLiteOutbox(tmp_path / "outbox.sqlite3", max_items=10))
    else:
        app = make_app(BoundedOutbox(max_items=10))
    receiver.stop()
    during = app.requests(30, fail_every=6)  # 30 transactions and 5 errors for 10 places
    assert not app.flush(0.5)
    dropped = app.stats()["dropped"]
    assert set(dropped) == {f"{QUEUE_OVERFLOW}:transaction"}  # errors go last: none went
    assert app.stats()["queued"] == 10

    receiver.start()
    assert app.flush(5)
    got = received(receiver)
    assert_one_event_id_per_trace(got)
    assert got.repeats == {}
    assert sorted(got.errors) == sorted(during.errors)
    assert set(got.transactions) <= set(during.transactions)
    overflowed = dropped[f"{QUEUE_OVERFLOW}:transaction"]
    assert len(got.transactions) + overflowed == len(during.transactions)  # the bound: 10
    assert len(got.transactions) == 10 - len(during.errors)
    assert app.stats()["dropped"] == dropped  # nothing more after the outage
    # ... and Sentry is told the same numbers (the flush sends a client report).
    assert receiver.wait_for(lambda r: len(r.client_reports()) >= 1, timeout=5)
    assert discarded(receiver) == {(QUEUE_OVERFLOW, "transaction"): overflowed}


def test_an_empty_outbox_given_to_the_exporter_is_used(
    receiver: RecordingReceiver, make_app: MakeApp
) -> None:
    outbox = MemoryOutbox(max_items=10)
    app = make_app(outbox)
    receiver.stop()
    app.requests(30)
    assert not app.flush(0.3)
    assert len(outbox) == 10  # the bound given holds ...
    assert app.stats()["queued"] == 10  # ... and is what the exporter reports


# -- b) Sentry slower than the sender's timeout, then fast again -----------------------------


def test_slow_beyond_the_timeout_repeats_only_the_same_event_id(
    receiver: RecordingReceiver, make_app: MakeApp
) -> None:
    app = make_app(timeout=0.25)
    # Two answers that come after the sender gave up; the receiver keeps both envelopes.
    receiver.respond_with(200, delay=0.7, times=2)
    sent = app.requests(6, fail_every=3)
    assert app.flush(10)
    # The two slow handlers finish after the flush: wait for what they kept.
    assert receiver.wait_for(lambda r: len(r.events()) == sent.envelopes + 2, timeout=5)

    got = received(receiver)
    assert_one_event_id_per_trace(got)
    assert sorted(got.transactions) == sorted(sent.transactions)
    assert sorted(got.errors) == sorted(sent.errors)
    # Two deliveries were cut off after the receiver had kept the envelope: two repeats,
    # each of an event id that was POSTed again; everything else arrived once.
    assert sum(n - 1 for n in got.kept.values()) == 2
    posts = receiver.posts()
    assert {event_id: posts[event_id] for event_id in got.kept} == dict(got.kept)
    assert set(posts) == set(got.kept)
    assert "timeout" in app.stats()["last_error"].lower()  # TimeoutError talking to ...
    assert_nothing_dropped(app)


# -- c) connections reset mid-body ----------------------------------------------------------


class ResettingServer:
    """Listens on ``port``; reads part of each of the first ``resets`` requests, then resets
    the connection (SO_LINGER 0: RST, not FIN); then calls ``then`` (start a real receiver)."""

    def __init__(self, port: int, resets: int, then: Callable[[], Any]) -> None:
        self.partial_requests: list[bytes] = []
        self._resets = resets
        self._then = then
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen()
        self._listener.settimeout(10)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            for _ in range(self._resets):
                connection, _ = self._listener.accept()
                connection.settimeout(5)
                data = b""
                # The head and a few bytes of the body, never the whole request.
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(1)
                    if not chunk:
                        break
                    data += chunk
                data += connection.recv(16)
                self.partial_requests.append(data)
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
        finally:
            self._listener.close()
            self._then()

    def join(self) -> None:
        self._thread.join(timeout=10)


def test_connections_reset_mid_body_then_everything_arrives_once(
    receiver: RecordingReceiver, make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger=SENDER_LOG)
    app = make_app()
    port = receiver.port
    receiver.stop()
    resetter = ResettingServer(port, resets=3, then=receiver.start)
    sent = app.requests(8, fail_every=4)
    assert app.flush(10)
    resetter.join()

    assert len(resetter.partial_requests) == 3
    for partial in resetter.partial_requests:
        head, _, body = partial.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /api/1/envelope/ HTTP/1.1")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        assert 0 < len(body) < length  # cut off mid-body
    # None of the cut-off requests reached a receiver: each event arrives exactly once.
    assert_all_arrived_once(receiver, sent)
    assert_nothing_dropped(app)
    first_failure = next(r.getMessage() for r in caplog.records if "talking to" in r.getMessage())
    assert first_failure.startswith(("ConnectionResetError", "BrokenPipeError")), first_failure


# -- d) rate limit on transactions only -----------------------------------------------------


def _limit_transactions(receiver: RecordingReceiver, app: App) -> Sent:
    """One request whose transaction meets a 60 s transaction-only 429; returns it."""
    receiver.respond_with(429, {"X-Sentry-Rate-Limits": "60:transaction:organization"})
    probe = app.requests(1)
    app.exporter.force_flush(0)  # convert it now (the sender wakes up too)
    assert eventually(lambda: "transaction" in app.stats()["rate_limited"])
    assert receiver.requests == 1
    return probe


def test_transaction_rate_limit_errors_flow_transactions_arrive_after_it(
    receiver: RecordingReceiver, make_app: MakeApp, clock: Clock
) -> None:
    app = make_app()
    probe = _limit_transactions(receiver, app)
    during = app.requests(9, fail_every=3)
    assert receiver.wait_for(lambda r: len(r.events("event")) == 3, timeout=5)
    assert not app.flush(0.3)
    got = received(receiver)
    assert sorted(got.errors) == sorted(during.errors)  # errors keep arriving
    assert got.transactions == {}  # transactions wait (Sentry asked: none were dropped)
    assert app.stats()["queued"] == 10
    assert set(app.stats()["rate_limited"]) == {"transaction"}

    clock.advance(61)
    assert app.flush(5)
    got = assert_all_arrived_once(receiver, probe + during)
    assert_nothing_dropped(app)
    assert app.stats()["sent"] == {"transaction": 10, "error": 3}
    posts = receiver.posts()
    (probe_id,) = got.transactions[probe.transactions[0]]
    assert posts[probe_id] == 2  # refused once (429), then delivered under the same id
    assert receiver.client_reports() == []


def test_transactions_held_by_a_rate_limit_overflow_oldest_first_as_counted(
    receiver: RecordingReceiver, make_app: MakeApp, clock: Clock
) -> None:
    app = make_app(BoundedOutbox(max_items=4))
    probe = _limit_transactions(receiver, app)
    during = app.requests(12, fail_every=4)  # 12 transactions (and 3 errors) for 4 places
    assert receiver.wait_for(lambda r: len(r.events("event")) == 3, timeout=5)
    assert not app.flush(0.3)
    dropped = app.stats()["dropped"]
    assert set(dropped) == {f"{QUEUE_OVERFLOW}:transaction"}

    clock.advance(61)
    assert app.flush(5)
    got = received(receiver)
    assert_one_event_id_per_trace(got)
    assert got.repeats == {}
    assert sorted(got.errors) == sorted(during.errors)
    sent_transactions = (probe + during).transactions
    overflowed = dropped[f"{QUEUE_OVERFLOW}:transaction"]
    kept = len(sent_transactions) - overflowed
    assert 1 <= kept <= 4
    # Held transactions are never leased, so the oldest went first: the newest arrived.
    assert sorted(got.transactions) == sorted(sent_transactions[-kept:])
    assert app.stats()["dropped"] == dropped
    assert receiver.wait_for(
        lambda r: discarded(r) == {(QUEUE_OVERFLOW, "transaction"): overflowed}, timeout=5
    )


def test_429_with_retry_after_pauses_everything_then_delivers_each_event_once(
    receiver: RecordingReceiver, make_app: MakeApp, clock: Clock
) -> None:
    app = make_app()
    receiver.respond_with(429, {"Retry-After": "30"})
    sent = app.requests(6, fail_every=2)
    assert not app.flush(0.5)
    assert receiver.requests == 1  # one refusal, then silence until the deadline
    assert app.stats()["rate_limited"] == {"*": pytest.approx(30, abs=1)}
    assert app.stats()["queued"] == sent.envelopes

    clock.advance(31)
    assert app.flush(5)
    assert_all_arrived_once(receiver, sent)
    assert_nothing_dropped(app)
    assert receiver.requests == 1 + sent.envelopes


# -- e) 500s, then success -------------------------------------------------------------------


def test_500s_then_success_delivers_each_event_once(
    receiver: RecordingReceiver, make_app: MakeApp
) -> None:
    app = make_app()
    receiver.respond_with(500, times=3)
    receiver.respond_with(503, times=2)
    sent = app.requests(8, fail_every=4)
    assert app.flush(10)
    got = assert_all_arrived_once(receiver, sent)
    assert_nothing_dropped(app)
    assert "HTTP 503" in app.stats()["last_error"]
    # Five refusals, each followed by a resend under the same event id; nothing was kept
    # twice (a 5xx is not kept).
    posts = receiver.posts()
    assert set(posts) == set(got.kept)
    assert sum(posts.values()) == sent.envelopes + 5
    assert receiver.requests == sent.envelopes + 5


def test_a_refused_envelope_between_500s_is_the_only_loss_and_is_counted(
    receiver: RecordingReceiver, make_app: MakeApp
) -> None:
    app = make_app()
    receiver.respond_with(500, times=2)
    receiver.respond_with(400)  # Sentry will never take this one: dropped, not retried
    sent = app.requests(8, fail_every=4)
    assert app.flush(10)
    got = received(receiver)
    assert_one_event_id_per_trace(got)
    assert got.repeats == {}
    missing_transactions = set(sent.transactions) - set(got.transactions)
    missing_errors = set(sent.errors) - set(got.errors)
    assert len(missing_transactions) + len(missing_errors) == 1  # the one refused, only
    assert set(got.transactions) <= set(sent.transactions)
    assert set(got.errors) <= set(sent.errors)
    category = "transaction" if missing_transactions else "error"
    assert app.stats()["dropped"] == {f"{SEND_ERROR}:{category}": 1}
    assert receiver.wait_for(lambda r: discarded(r) == {(SEND_ERROR, category): 1}, timeout=5)
    # Each envelope POSTed once, plus the two 5xx resends; the refused one never again.
    posts = receiver.posts()
    assert posts.pop(None) == 1  # the client report
    (refused,) = set(posts) - set(got.kept)
    assert sum(posts.values()) == sent.envelopes + 2
    assert 1 <= posts[refused] <= 3
