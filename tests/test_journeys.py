"""User journeys across requests and processes: state store, OTel metrics, Sentry transactions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.journeys import (
    JourneyTracker,
    configure_journeys,
    journey_abandon,
    journey_complete,
    journey_start,
    journey_step,
    use_meter_provider,
)
from otel_sentry_biz.processor import BusinessSpanProcessor
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.rules.measurement import measurements
from otel_sentry_biz.rules.state import StateStoreError, open_store
from otel_sentry_biz.rules.state.memory import MemoryStore
from otel_sentry_biz.sentry.exporter import SentrySpanExporter
from otel_sentry_biz.span_buffer import BufferedSpanProcessor
from tests.e2e.conftest import run_app
from tests.relay_oracle import assert_valid, tags_of
from tests.rules import conftest as rules_fixtures

#: memory://, sqlite:/// and redis:// (skipped with the reason when Redis is not reachable).
store_url = rules_fixtures.store_url

T0 = 1_748_858_400.0  # 2025-06-02 10:00 UTC


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: Short names of the metric attributes, for ``Metrics.value``.
KEYS = {
    "journey": "biz.journey",
    "step": "biz.journey.step",
    "outcome": "biz.journey.outcome",
    "reason": "biz.journey.abandon_reason",
    "funnel": "biz.funnel",
    "funnel_step": "biz.funnel.step",
    "feature": "biz.feature",
    "usage": "biz.feature.usage",
}


class Metrics:
    """A real SDK MeterProvider read by an InMemoryMetricReader."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """{attributes: value (counter) or data point (histogram)} of metric ``name``."""
        data = self.reader.get_metrics_data()
        found: dict[frozenset[tuple[str, Any]], Any] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        key = frozenset(point.attributes.items())
                        found[key] = getattr(point, "value", point)
        return found

    def value(self, name: str, **attributes: str) -> Any:
        """The point of ``name`` with exactly ``attributes`` (short names, see ``KEYS``)."""
        wanted = frozenset((KEYS[key], value) for key, value in attributes.items())
        return self.points(name).get(wanted, 0)

    def unit(self, name: str) -> Optional[str]:
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        return metric.unit
        return None


class Requests:
    """Spans of a real TracerProvider kept in memory; ``request()`` is one server span."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests.journeys")

    @contextmanager
    def request(self, name: str = "POST /signup") -> Iterator[None]:
        with self.tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            yield

    def last(self) -> ReadableSpan:
        return self.exporter.get_finished_spans()[-1]


class SentryPipeline:
    """The real pipeline into a real Sentry-protocol receiver: processor, buffer, exporter."""

    def __init__(self, receiver: LocalReceiver) -> None:
        self.receiver = receiver
        self.provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        exporter = SentrySpanExporter(dsn=receiver.dsn)
        self.provider.add_span_processor(BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
        self.tracer = self.provider.get_tracer("tests.journeys")

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        with self.tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            yield

    def transactions(self, count: int) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """{transaction name: (event as sent, event as Relay normalized it)}."""
        self.provider.shutdown()
        assert self.receiver.wait_for(lambda r: len(r.events("transaction")) >= count, timeout=10)
        return {e["transaction"]: (e, assert_valid(e)) for e in self.receiver.events("transaction")}


def events_of(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def meters() -> Metrics:
    return Metrics()


@pytest.fixture
def requests() -> Requests:
    return Requests()


@pytest.fixture
def tracker(clock: Clock, meters: Metrics) -> Iterator[JourneyTracker]:
    store = open_store("memory://")
    yield JourneyTracker(store, meter_provider=meters.provider, clock=clock)
    store.close()


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


# -- across requests ------------------------------------------------------------------------


def test_a_journey_continues_in_later_requests_and_ends_with_its_duration_and_steps(
    tracker: JourneyTracker, requests: Requests, clock: Clock
) -> None:
    with requests.request("POST /signup"):
        journey_id = tracker.start("signup", user=42, source="google")
    started = requests.last()
    assert started.attributes["biz.journey"] == "signup"
    assert started.attributes["biz.journey.id"] == journey_id
    (event,) = events_of(started, "biz.journey.started")
    assert event["biz.source"] == "google" and event["biz.journey.user"] == "42"

    clock.advance(30)
    with requests.request("GET /verify"):
        tracker.step(journey_id, "email_verified")
    verified = requests.last()
    assert verified.attributes["biz.journey.step"] == "email_verified"
    assert measurements([verified]) == {"journey_step": {"value": 1.0, "unit": "none"}}

    clock.advance(90)
    with requests.request("POST /profile"):
        tracker.step(journey_id, "profile_created")
        tracker.complete(journey_id, plan="pro")
    completed = requests.last()
    assert completed.attributes["biz.journey.outcome"] == "completed"
    assert measurements([completed]) == {
        "journey_step": {"value": 2.0, "unit": "none"},
        "journey_duration": {"value": 120_000.0, "unit": "millisecond"},
        "journey_steps": {"value": 2.0, "unit": "none"},
    }
    assert events_of(completed, "biz.journey.completed")[0]["biz.plan"] == "pro"


def test_two_trackers_on_one_store_url_share_a_journey_like_two_processes(
    store_url: str, clock: Clock, meters: Metrics, requests: Requests
) -> None:
    web = open_store(store_url)
    # Two connections, as two processes have; memory:// is one process's store by design.
    worker = web if store_url == "memory://" else open_store(store_url)
    try:
        first = JourneyTracker(web, meter_provider=meters.provider, clock=clock)
        second = JourneyTracker(worker, meter_provider=meters.provider, clock=clock)
        with requests.request():
            journey_id = first.start("checkout")
        clock.advance(5)
        with requests.request("POST /pay"):
            second.step(journey_id, "paid")
            second.complete(journey_id)
            first.complete(journey_id)  # a retried request elsewhere: the journey ends once
        assert measurements([requests.last()])["journey_duration"]["value"] == 5000.0
        assert meters.value("biz.journey.completed", journey="checkout") == 1
    finally:
        web.close()
        worker.close()


def test_a_real_pipeline_tags_each_transaction_and_measures_the_end(
    receiver: LocalReceiver, clock: Clock
) -> None:
    sentry = SentryPipeline(receiver)
    store = open_store("memory://")
    tracker = JourneyTracker(store, clock=clock, meter_provider=Metrics().provider)
    with sentry.request("POST /cart"):
        journey_id = tracker.start("checkout", journey_id="cart-981")
    clock.advance(2.5)
    with sentry.request("POST /address"):
        tracker.step(journey_id, "address")
    clock.advance(60)
    with sentry.request("POST /pay"):
        tracker.step(journey_id, "payment")
        tracker.abandon(journey_id, reason="payment_declined")

    found = sentry.transactions(3)
    for _sent, normalized in found.values():
        tags = tags_of(normalized)
        assert tags["journey"] == "checkout"
        assert tags["journey.id"] == "cart-981"
    assert tags_of(found["POST /address"][1])["journey.step"] == "address"
    assert found["POST /address"][1]["measurements"]["journey_step"]["value"] == 1.0
    _, normalized = found["POST /pay"]
    tags = tags_of(normalized)
    assert tags["journey.outcome"] == "abandoned"
    assert tags["journey.abandon_reason"] == "payment_declined"
    assert normalized["measurements"]["journey_duration"] == {
        "value": 62_500.0,
        "unit": "millisecond",
    }
    assert normalized["measurements"]["journey_steps"] == {"value": 2.0, "unit": "none"}
    assert "measurements" not in found["POST /cart"][1]
    store.close()


# -- metrics --------------------------------------------------------------------------------


def test_metrics_count_each_verb_with_names_only_never_ids(
    tracker: JourneyTracker, meters: Metrics, clock: Clock
) -> None:
    for user in range(3):
        journey_id = tracker.start("signup", user=user)
        tracker.step(journey_id, "email_verified")
        clock.advance(10 * (user + 1))
        if user < 2:
            tracker.complete(journey_id)
        else:
            tracker.abandon(journey_id, reason="gave_up")

    assert meters.value("biz.journey.started", journey="signup") == 3
    assert meters.value("biz.journey.step", journey="signup", step="email_verified") == 3
    assert meters.value("biz.journey.completed", journey="signup") == 2
    assert meters.value("biz.journey.abandoned", journey="signup", reason="gave_up") == 1
    completed = meters.value("biz.journey.duration", journey="signup", outcome="completed")
    assert (completed.count, completed.sum) == (2, 10 + 20)
    assert meters.unit("biz.journey.duration") == "s"
    for name in ("biz.journey.started", "biz.journey.step", "biz.journey.completed"):
        for attributes in meters.points(name):
            assert {key for key, _ in attributes} <= {"biz.journey", "biz.journey.step"}


def test_the_module_functions_use_the_configured_state_and_meter_provider(
    meters: Metrics, requests: Requests
) -> None:
    configure_journeys("memory://", ttl=600, meter_provider=meters.provider)
    try:
        with requests.request():
            journey_id = journey_start("onboarding")
            journey_step(journey_id, "profile")
            journey_complete(journey_id)
            other = journey_start("onboarding")
            journey_abandon(other)
        assert meters.value("biz.journey.completed", journey="onboarding") == 1
        assert (
            meters.value(
                "biz.journey.abandoned",
                journey="onboarding",
                reason="unspecified",
            )
            == 1
        )
    finally:
        use_meter_provider(None)
        configure_journeys("memory://")


def test_a_state_that_is_no_store_is_refused_at_start_up_with_the_fix() -> None:
    with pytest.raises(StateStoreError, match="dict is not a state store: add incr, add_once"):
        configure_journeys({"url": "memory://"})  # type: ignore[arg-type]


def test_configure_puts_journeys_on_the_rules_state_store_and_fails_early_on_a_bad_one(
    tmp_path: Any, requests: Requests
) -> None:
    import otel_sentry_biz as biz

    url = f"sqlite:///{tmp_path / 'state.db'}"
    pipeline = biz.configure(tracer_provider=TracerProvider(), rules_state=url, environ={})
    try:
        with requests.request():
            journey_id = journey_start("onboarding")
        # Another process opening the same URL sees the journey configure() stored.
        other = open_store(url)
        try:
            with requests.request():
                assert JourneyTracker(other).complete(journey_id) is not False
            assert requests.last().attributes["biz.journey.outcome"] == "completed"
        finally:
            other.close()
        missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'state.db'}"
        with pytest.raises(ConfigError):
            biz.configure(tracer_provider=TracerProvider(), rules_state=missing, environ={})
    finally:
        pipeline.shutdown()
        configure_journeys("memory://")


# -- expiry ---------------------------------------------------------------------------------


def test_a_journey_touched_after_its_ttl_counts_as_abandoned_once(
    clock: Clock, meters: Metrics, requests: Requests
) -> None:
    store = open_store("memory://")
    tracker = JourneyTracker(store, ttl=3600, meter_provider=meters.provider, clock=clock)
    journey_id = tracker.start("signup")
    clock.advance(3601)
    with requests.request("POST /profile"):
        tracker.complete(journey_id)
    late = requests.last()
    assert late.attributes["biz.journey.outcome"] == "expired"
    assert measurements([late]) == {}
    with requests.request("GET /profile"):
        tracker.step(journey_id, "again")
    assert requests.last().attributes["biz.journey.outcome"] == "expired"
    assert meters.value("biz.journey.completed", journey="signup") == 0
    completed_in_time = tracker.start("signup")
    tracker.complete(completed_in_time)
    clock.advance(3601)
    with requests.request("GET /receipt"):
        tracker.step(completed_in_time, "late")
    assert "biz.journey.outcome" not in requests.last().attributes
    assert meters.value("biz.journey.abandoned", journey="signup", reason="expired") == 1
    store.close()


def test_the_sweep_expires_journeys_nobody_touches_again(
    tracker: JourneyTracker, meters: Metrics, clock: Clock
) -> None:
    stale = [tracker.start("signup") for _ in range(3)]
    tracker.complete(stale[0])
    clock.advance(12 * 3600)
    fresh = tracker.start("signup")
    clock.advance(12 * 3600 + 1)
    assert tracker.sweep() == 2  # the completed one ended already; the fresh one has time
    assert tracker.sweep() == 0
    tracker.complete(fresh)
    abandoned = meters.value("biz.journey.abandoned", journey="signup", reason="expired")
    assert abandoned == 2
    assert meters.value("biz.journey.completed", journey="signup") == 2


def test_journey_calls_sweep_by_themselves_every_minute(
    tracker: JourneyTracker, meters: Metrics, clock: Clock
) -> None:
    tracker.start("signup")
    clock.advance(24 * 3600 + 61)
    tracker.start("signup")  # any call, a minute after the last sweep
    abandoned = meters.value("biz.journey.abandoned", journey="signup", reason="expired")
    assert abandoned == 1


def test_an_expired_journey_started_elsewhere_is_swept_once_across_processes(
    tmp_path: Any, clock: Clock, meters: Metrics
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    stores = [open_store(url), open_store(url)]
    starter, other = (
        JourneyTracker(s, ttl=60, meter_provider=meters.provider, clock=clock) for s in stores
    )
    journey_id = starter.start("signup")
    clock.advance(61)
    other.complete(journey_id)  # touched in another process: expired there
    assert starter.sweep() == 0  # the starter's sweep does not count it again
    assert meters.value("biz.journey.abandoned", journey="signup", reason="expired") == 1
    for store in stores:
        store.close()


def test_a_ttl_that_is_not_positive_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="positive number of seconds"):
        JourneyTracker(ttl=0)


# -- ids ------------------------------------------------------------------------------------


def test_starting_a_running_id_again_keeps_it_and_an_ended_id_starts_afresh(
    tracker: JourneyTracker, meters: Metrics, requests: Requests
) -> None:
    assert tracker.start("checkout", journey_id=981) == "981"
    tracker.step(981, "address")
    assert tracker.start("checkout", journey_id="981") == "981"  # a retried request
    assert meters.value("biz.journey.started", journey="checkout") == 1
    tracker.complete("981")
    tracker.start("checkout", journey_id="981")  # the same cart, checked out again
    with requests.request():
        tracker.step("981", "address")
    assert measurements([requests.last()])["journey_step"]["value"] == 1.0  # not 2
    assert meters.value("biz.journey.started", journey="checkout") == 2


def test_an_unknown_or_hostile_id_is_logged_once_and_never_raises(
    tracker: JourneyTracker, meters: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "otel_sentry_biz.journeys")
    for _ in range(3):
        tracker.step("no-such-journey", "paid")
        tracker.complete("no-such-journey")
    for hostile in ("x" * 10_000, "a\nb", "", None, ["list"], 3.5):
        tracker.step(hostile, "paid")  # type: ignore[arg-type]
        tracker.abandon(hostile)  # type: ignore[arg-type]
    unknown = [r for r in caplog.records if "no-such-journey" in r.getMessage()]
    assert len(unknown) == 1
    assert meters.points("biz.journey.step") == {}
    assert tracker.dropped == 0


def test_looking_up_an_unknown_journey_leaves_nothing_in_the_store(
    clock: Clock, meters: Metrics
) -> None:
    store = MemoryStore()
    tracker = JourneyTracker(store, meter_provider=meters.provider, clock=clock)
    tracker.step("no-such-journey", "paid")
    tracker.complete("no-such-journey")
    tracker.abandon("no-such-journey")
    assert len(store) == 0
    # The id can still be started, at once, with its own record.
    assert tracker.start("checkout", journey_id="no-such-journey") == "no-such-journey"
    assert meters.value("biz.journey.started", journey="checkout") == 1


def test_a_name_or_user_that_cannot_be_printed_loses_the_journey_not_the_request(
    tracker: JourneyTracker, meters: Metrics
) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert len(tracker.start(Unprintable())) == 32  # type: ignore[arg-type]
    assert len(tracker.start("signup", user=Unprintable())) == 32  # type: ignore[arg-type]
    assert meters.points("biz.journey.started") == {}


def test_a_bad_journey_id_at_start_gets_a_generated_one(
    tracker: JourneyTracker, caplog: pytest.LogCaptureFixture
) -> None:
    journey_id = tracker.start("signup", journey_id="x" * 500)
    assert len(journey_id) == 32
    assert "journey_id must be a string" in caplog.text


def test_an_unreachable_store_drops_and_counts_but_never_raises(
    meters: Metrics, requests: Requests
) -> None:
    # Nothing listens on port 1: every call fails fast (and the breaker then answers at once).
    store = open_store("redis://127.0.0.1:1/0?timeout=0.05")
    tracker = JourneyTracker(store, meter_provider=meters.provider)
    with requests.request():
        journey_id = tracker.start("signup")
        tracker.step(journey_id, "email_verified")
        tracker.complete(journey_id)
    assert len(journey_id) == 32  # the app still gets an id to carry on with
    assert tracker.dropped == 3
    assert meters.points("biz.journey.started") == {}


# -- another process ------------------------------------------------------------------------

_PROCESS = """
import otel_sentry_biz as biz
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind
from otel_sentry_biz.journeys import journey_complete, journey_start, journey_step

pipeline = biz.configure(traces_sample_rate=1.0, resource={"service.name": "shop"})
# Set after the package is imported (and after configure): the instruments must still use it.
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
tracer = trace.get_tracer("shop")
with tracer.start_as_current_span(ARGS[0], kind=SpanKind.SERVER):
    if ARGS[0] == "POST /signup":
        print(journey_start("signup", user="u-1"))
    else:
        journey_step(ARGS[1], "email_verified")
        journey_complete(ARGS[1])
pipeline.shutdown()
for resource in reader.get_metrics_data().resource_metrics:
    for scope in resource.scope_metrics:
        for metric in scope.metrics:
            print(metric.name, sum(p.count if hasattr(p, "count") else p.value
                                   for p in metric.data.data_points))
"""


@pytest.mark.slow
def test_a_journey_started_in_one_process_completes_in_another(
    tmp_path: Any, receiver: LocalReceiver
) -> None:
    env = {
        "SENTRY_DSN": receiver.dsn,
        "OTEL_SENTRY_BIZ_RULES_STATE": f"sqlite:///{tmp_path / 'state.db'}",
    }
    app = _PROCESS
    first = run_app(tmp_path, "ARGS = ['POST /signup']\n" + app, **env)
    assert first.returncode == 0, first.stderr
    journey_id = first.stdout.split()[0]
    assert "biz.journey.started 1" in first.stdout

    second = run_app(tmp_path, f"ARGS = ['POST /verify', {journey_id!r}]\n" + app, **env)
    assert second.returncode == 0, second.stderr
    assert "biz.journey.completed 1" in second.stdout
    assert "biz.journey.duration 1" in second.stdout

    assert receiver.wait_for(lambda r: len(r.events("transaction")) >= 2, timeout=20)
    ended = next(e for e in receiver.events("transaction") if e["transaction"] == "POST /verify")
    normalized = assert_valid(ended)
    tags = tags_of(normalized)
    assert (tags["journey"], tags["journey.id"]) == ("signup", journey_id)
    assert tags["journey.outcome"] == "completed"
    assert normalized["measurements"]["journey_steps"] == {"value": 1.0, "unit": "none"}
    assert normalized["measurements"]["journey_duration"]["unit"] == "millisecond"
    assert normalized["measurements"]["journey_duration"]["value"] > 0
