"""Conversion funnels and feature usage: counts in the state store, OTel metrics, Sentry."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.journeys import Funnel, feature_used, use_meter_provider
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz.rules.measurement import measurements
from otel_sentry_biz.rules.state import StoreUnavailable, open_store
from otel_sentry_biz.rules.state.memory import MemoryStore
from tests import test_journeys
from tests.relay_oracle import tags_of
from tests.rules import conftest as rules_fixtures
from tests.test_journeys import Clock, Metrics, Requests, SentryPipeline, events_of

#: memory://, sqlite:/// and redis:// (skipped with the reason when Redis is not reachable).
store_url = rules_fixtures.store_url
#: The fixtures of the journey tests: a hand-moved clock, metrics, requests, a receiver.
clock, meters, requests, receiver = (
    test_journeys.clock,
    test_journeys.meters,
    test_journeys.requests,
    test_journeys.receiver,
)

STEPS = ["cart", "address", "payment", "confirmed"]
DAY = 24 * 3600.0


@pytest.fixture
def checkout(clock: Clock, meters: Metrics) -> Iterator[Funnel]:
    store = open_store("memory://")
    yield Funnel("checkout", STEPS, store=store, meter_provider=meters.provider, clock=clock)
    store.close()


def walk(funnel: Funnel, subjects: int, until: str) -> None:
    """``subjects`` sessions go through the steps up to ``until``."""
    for subject in range(subjects):
        for step in funnel.steps[: funnel.steps.index(until) + 1]:
            funnel.step(f"session-{subject}", step)


# -- conversion -----------------------------------------------------------------------------


def test_the_snapshot_counts_distinct_subjects_and_conversion_per_step(checkout: Funnel) -> None:
    walk(checkout, 10, "cart")
    walk(checkout, 6, "address")
    walk(checkout, 3, "payment")
    walk(checkout, 2, "confirmed")
    checkout.step("session-0", "confirmed")  # a reload: counted once

    snapshot = checkout.snapshot()
    assert snapshot.entered == 10
    assert [(s.step, s.reached) for s in snapshot.steps] == [
        ("cart", 10),
        ("address", 6),
        ("payment", 3),
        ("confirmed", 2),
    ]
    assert [s.conversion for s in snapshot.steps] == [100.0, 60.0, 30.0, 20.0]
    assert [s.from_previous for s in snapshot.steps] == [100.0, 60.0, 50.0, 66.67]
    assert (snapshot.converted, snapshot.conversion) == (2, 20.0)


def test_each_step_measures_the_cohorts_conversion_on_its_transaction(
    checkout: Funnel, requests: Requests
) -> None:
    walk(checkout, 4, "cart")
    with requests.request("POST /pay"):
        checkout.step("session-0", "payment", amount=120.5)  # address skipped: allowed
    paid = requests.last()
    assert measurements([paid]) == {
        "funnel_checkout_conversion": {"value": 25.0, "unit": "percent"}
    }
    assert paid.attributes["biz.funnel"] == "checkout"
    assert paid.attributes["biz.funnel.step"] == "payment"
    (event,) = events_of(paid, "biz.funnel.step")
    assert event["biz.amount"] == 120.5


def test_steps_before_entering_and_undeclared_steps_are_not_counted(
    checkout: Funnel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "otel_sentry_biz.journeys")
    checkout.step("deep-link", "payment")  # never entered
    checkout.step("session-1", "cart")
    for _ in range(3):
        checkout.step("session-1", "wishlist")
    for hostile in (None, "", "x" * 500, ["list"]):
        checkout.step(hostile, "cart")  # type: ignore[arg-type]
    snapshot = checkout.snapshot()
    assert (snapshot.entered, snapshot.steps[2].reached) == (1, 0)
    assert len([r for r in caplog.records if "wishlist" in r.getMessage()]) == 1


def test_a_step_of_a_subject_that_never_entered_leaves_nothing_in_the_store(
    clock: Clock, meters: Metrics
) -> None:
    store = MemoryStore()
    funnel = Funnel("checkout", STEPS, store=store, meter_provider=meters.provider, clock=clock)
    funnel.step("deep-link", "payment")
    assert len(store) == 0
    funnel.step("deep-link", "cart")  # entering right after is counted
    assert funnel.snapshot().entered == 1


def test_subjects_are_counted_in_the_cohort_they_entered_in(checkout: Funnel, clock: Clock) -> None:
    clock.now = 100 * DAY + DAY - 60  # a minute before the period ends
    checkout.step("late-evening", "cart")
    clock.advance(120)  # the next period
    checkout.step("late-evening", "confirmed")
    checkout.step("next-morning", "cart")

    previous = checkout.snapshot(at=clock.now - DAY)
    assert (previous.entered, previous.converted, previous.conversion) == (1, 1, 100.0)
    current = checkout.snapshot()
    assert (current.entered, current.converted) == (1, 0)
    assert current.cohort_start == 101 * DAY


def test_a_subject_has_the_window_to_convert(checkout: Funnel, clock: Clock) -> None:
    checkout.step("slow", "cart")
    clock.advance(DAY + 1)
    checkout.step("slow", "confirmed")  # too late: its entry has expired
    assert checkout.snapshot(at=clock.now - DAY).converted == 0
    checkout.step("slow", "cart")  # back again: a new entry, in today's cohort
    checkout.step("slow", "confirmed")
    assert (checkout.snapshot().entered, checkout.snapshot().converted) == (1, 1)


def test_two_funnels_on_one_store_url_add_up_like_two_processes(
    store_url: str, clock: Clock, meters: Metrics
) -> None:
    web = open_store(store_url)
    worker = web if store_url == "memory://" else open_store(store_url)
    try:
        here, there = (
            Funnel("signup", ["form", "verified"], store=s, clock=clock) for s in (web, worker)
        )
        for n in range(4):
            here.step(n, "form")
        there.step(0, "verified")
        there.step(1, "verified")
        here.step(1, "verified")  # the same subject in the other process: once
        assert here.snapshot().steps[1].conversion == 50.0
        assert there.snapshot().entered == 4
    finally:
        web.close()
        worker.close()


def test_a_snapshot_says_when_the_store_cannot_answer() -> None:
    funnel = Funnel("checkout", STEPS, store=open_store("redis://127.0.0.1:1/0?timeout=0.05"))
    funnel.step("session-0", "cart")  # a recording: counted as dropped, never raised
    assert funnel.dropped == 1
    with pytest.raises(StoreUnavailable):
        funnel.snapshot()


# -- declaration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fix"),
    [
        (("Checkout Flow", STEPS), "use 1-46 characters a-z, 0-9 or '_'"),
        (("x" * 47, STEPS), "use 1-46 characters"),
        (("checkout", []), "use a list of step names"),
        (("checkout", "cart"), "use a list of step names"),
        (("checkout", ["cart", ""]), "use a list of step names"),
        (("checkout", ["cart", "cart"]), "name each step once"),
    ],
)
def test_a_bad_declaration_fails_at_start_up_with_the_fix(arguments: Any, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix):
        Funnel(*arguments)


def test_a_window_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ConfigError, match="positive number of seconds"):
        Funnel("checkout", STEPS, window=0)


# -- metrics --------------------------------------------------------------------------------


def test_the_step_counter_has_funnel_and_step_never_the_subject(
    checkout: Funnel, meters: Metrics
) -> None:
    walk(checkout, 5, "cart")
    walk(checkout, 2, "payment")
    assert meters.value("biz.funnel.step", funnel="checkout", funnel_step="cart") == 5
    assert meters.value("biz.funnel.step", funnel="checkout", funnel_step="payment") == 2
    for attributes in meters.points("biz.funnel.step"):
        assert {key for key, _ in attributes} == {"biz.funnel", "biz.funnel.step"}


# -- Sentry ---------------------------------------------------------------------------------


def test_the_funnel_and_feature_reach_the_sentry_transaction(
    receiver: LocalReceiver, clock: Clock
) -> None:
    sentry = SentryPipeline(receiver)
    store = open_store("memory://")
    funnel = Funnel("checkout", STEPS, store=store, clock=clock, meter_provider=Metrics().provider)
    for subject in ("a", "b", "c", "d"):
        funnel.step(subject, "cart")
    with sentry.request("POST /confirm"):
        funnel.step("a", "confirmed")
        feature_used("one_click_checkout", usage="saved_card")

    (_, normalized) = sentry.transactions(1)["POST /confirm"]
    assert normalized["measurements"]["funnel_checkout_conversion"] == {
        "value": 25.0,
        "unit": "percent",
    }
    tags = tags_of(normalized)
    assert (tags["funnel"], tags["funnel.step"]) == ("checkout", "confirmed")
    assert (tags["feature"], tags["feature.usage"]) == ("one_click_checkout", "saved_card")
    store.close()


# -- feature usage --------------------------------------------------------------------------


@pytest.fixture
def shared_meters(meters: Metrics) -> Iterator[Metrics]:
    use_meter_provider(meters.provider)
    yield meters
    use_meter_provider(None)


def test_feature_use_is_counted_by_feature_and_usage_with_details_on_the_span(
    shared_meters: Metrics, requests: Requests
) -> None:
    with requests.request("POST /posts"):
        feature_used("post_creator", usage="video_created", file_size=1024, user_id=7)
    feature_used("post_creator", usage="video_created")  # outside a request: counted too
    feature_used("export_csv")

    assert (
        shared_meters.value("biz.feature.used", feature="post_creator", usage="video_created") == 2
    )
    assert shared_meters.value("biz.feature.used", feature="export_csv") == 1
    span = requests.last()
    assert span.attributes["biz.feature"] == "post_creator"
    (event,) = events_of(span, "biz.feature.used")
    assert (event["biz.file_size"], event["biz.user_id"]) == (1024, 7)


def test_a_feature_name_built_from_ids_is_capped_as_other(
    shared_meters: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(150):
        feature_used(f"report-{n}")
    points = shared_meters.points("biz.feature.used")
    assert len(points) == 101  # 100 distinct values, then "other"
    assert shared_meters.value("biz.feature.used", feature="other") == 50
    assert len([r for r in caplog.records if "distinct values" in r.getMessage()]) == 1


def test_feature_used_never_raises_on_hostile_input(shared_meters: Metrics) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    feature_used(Unprintable())  # type: ignore[arg-type]
    feature_used("ok", usage=Unprintable())  # type: ignore[arg-type]
    assert shared_meters.points("biz.feature.used") == {}
