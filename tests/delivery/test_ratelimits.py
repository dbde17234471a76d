"""Sentry's rate-limit protocol: the pure parsers and the RateLimits state, no socket."""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Iterator

import pytest

from otel_sentry_biz.sentry.ratelimits import (
    ALL,
    DEFAULT_RETRY_AFTER,
    RateLimits,
    parse_rate_limits,
    parse_retry_after,
)

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


# -- Retry-After ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), (" 7 ", 7.0), ("2.5", 2.5), ("0", 0.0), ("-5", 0.0)],
)
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    in_90s = email.utils.formatdate(NOW + 90, usegmt=True)  # IMF-fixdate, "... GMT"
    assert parse_retry_after(in_90s, NOW) == pytest.approx(90.0)
    assert parse_retry_after(in_90s, NOW + 30) == pytest.approx(60.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    past = email.utils.formatdate(NOW - 3600, usegmt=True)
    assert parse_retry_after(past, NOW) == 0.0


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """Run in a local time zone 5 hours from UTC: HTTP dates are GMT whatever the machine says."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "EST+05"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.parametrize(
    "form",
    [
        "Tue, 14 Nov 2023 22:14:50 GMT",  # IMF-fixdate
        "Tuesday, 14-Nov-23 22:14:50 GMT",  # obsolete RFC 850
        "Tue Nov 14 22:14:50 2023",  # obsolete asctime: no zone, and it is GMT (RFC 9110)
    ],
)
def test_every_http_date_form_is_gmt(far_from_utc: None, form: str) -> None:
    assert parse_retry_after(form, NOW) == pytest.approx(90.0)


@pytest.mark.parametrize("garbage", [None, "", "   ", "soon", "12abc", "nan", "inf", "-inf"])
def test_garbage_retry_after_is_unusable(garbage: str) -> None:
    assert parse_retry_after(garbage, NOW) is None


@pytest.mark.parametrize("garbage", ["soon", "", "inf", "nan"])
def test_429_with_garbage_retry_after_waits_the_default(garbage: str) -> None:
    limits = RateLimits()
    assert limits.update_from_response(429, {"Retry-After": garbage}, NOW)
    assert limits.snapshot(NOW) == {"*": DEFAULT_RETRY_AFTER}
    assert limits.is_limited("error", NOW + DEFAULT_RETRY_AFTER - 0.1)
    assert not limits.is_limited("error", NOW + DEFAULT_RETRY_AFTER)


def test_429_without_any_header_waits_the_default_for_everything() -> None:
    limits = RateLimits()
    assert limits.update_from_response(429, {}, NOW)
    assert limits.is_limited("error", NOW + 59)
    assert limits.is_limited("transaction", NOW + 59)
    assert DEFAULT_RETRY_AFTER == 60.0


# -- X-Sentry-Rate-Limits -------------------------------------------------------------------


def test_rate_limits_with_several_entries_and_empty_categories() -> None:
    found = parse_rate_limits("60:transaction;span:organization, 2700::project", NOW)
    assert found == {"transaction": NOW + 60, "span": NOW + 60, ALL: NOW + 2700}
    assert ALL is None


def test_rate_limits_ignore_scope_reason_and_namespaces() -> None:
    header = (
        "10:metric_bucket:organization:quota_exceeded:custom;spans,20:error;default:key:my_reason"
    )
    assert parse_rate_limits(header, NOW) == {
        "metric_bucket": NOW + 10,
        "error": NOW + 20,
        "default": NOW + 20,
    }


def test_a_bare_retry_after_limits_everything() -> None:
    assert parse_rate_limits("30", NOW) == {ALL: NOW + 30}


def test_rate_limits_skip_garbage_entries_and_keep_the_longest() -> None:
    header = (
        "abc:error, :error, -1:error, inf:error, nan:error, 10:error, 30 : error ; span , 20:error"
    )
    assert parse_rate_limits(header, NOW) == {"error": NOW + 30, "span": NOW + 30}


@pytest.mark.parametrize("empty", [None, "", " , ,"])
def test_no_rate_limits(empty: str) -> None:
    assert parse_rate_limits(empty, NOW) == {}


# -- RateLimits -----------------------------------------------------------------------------


def test_category_limit_applies_to_that_category_only_until_its_deadline() -> None:
    limits = RateLimits()
    assert limits.update_from_response(
        429, {"X-Sentry-Rate-Limits": "60:transaction:organization"}, NOW
    )
    assert limits.is_limited("transaction", NOW)
    assert limits.is_limited("transaction", NOW + 59.99)
    assert not limits.is_limited("transaction", NOW + 60)  # the deadline itself is free
    assert not limits.is_limited("error", NOW)


def test_all_limit_covers_every_category() -> None:
    limits = RateLimits()
    limits.update_from_response(200, {"X-Sentry-Rate-Limits": "5::organization"}, NOW)
    for category in ("error", "transaction", "span", "anything"):
        assert limits.is_limited(category, NOW + 4)
        assert not limits.is_limited(category, NOW + 5)


def test_header_wins_over_retry_after_on_a_429() -> None:
    limits = RateLimits()
    limits.update_from_response(
        429, {"Retry-After": "600", "X-Sentry-Rate-Limits": "60:transaction"}, NOW
    )
    assert limits.snapshot(NOW) == {"transaction": 60.0}
    assert not limits.is_limited("error", NOW)


def test_rate_limits_on_a_success_are_obeyed_too() -> None:
    limits = RateLimits()
    assert limits.update_from_response(200, {"X-Sentry-Rate-Limits": "60:transaction"}, NOW)
    assert limits.is_limited("transaction", NOW + 1)


def test_header_names_are_found_in_lower_case() -> None:
    limits = RateLimits()
    assert limits.update_from_response(200, {"x-sentry-rate-limits": "60:error"}, NOW)
    assert limits.update_from_response(429, {"retry-after": "5"}, NOW)
    assert limits.snapshot(NOW) == {"error": 60.0, "*": 5.0}


@pytest.mark.parametrize("status", [200, 201, 400, 500, 503])
def test_responses_without_limits_impose_nothing(status: int) -> None:
    limits = RateLimits()
    assert not limits.update_from_response(status, {"Retry-After": "30"}, NOW)
    assert limits.snapshot(NOW) == {}
    assert limits.next_expiry(NOW) is None
    assert not limits.is_limited("error", NOW)


def test_a_shorter_limit_never_shortens_a_longer_one() -> None:
    limits = RateLimits()
    limits.update_from_response(200, {"X-Sentry-Rate-Limits": "120:error"}, NOW)
    limits.update_from_response(200, {"X-Sentry-Rate-Limits": "10:error"}, NOW)
    assert limits.is_limited("error", NOW + 100)
    limits.update_from_response(200, {"X-Sentry-Rate-Limits": "300:error"}, NOW)
    assert limits.is_limited("error", NOW + 200)


def test_next_expiry_and_snapshot_forget_what_expired() -> None:
    limits = RateLimits()
    limits.update_from_response(
        200, {"X-Sentry-Rate-Limits": "10:transaction, 30:error, 100::organization"}, NOW
    )
    assert limits.next_expiry(NOW) == NOW + 10
    assert limits.snapshot(NOW + 0.25) == {"transaction": 9.75, "error": 29.75, "*": 99.75}
    assert limits.next_expiry(NOW + 10) == NOW + 30
    assert limits.snapshot(NOW + 10) == {"error": 20.0, "*": 90.0}
    assert limits.snapshot(NOW + 100) == {}
    assert limits.next_expiry(NOW + 100) is None


def test_snapshot_rounds_to_milliseconds() -> None:
    limits = RateLimits()
    limits.update_from_response(200, {"X-Sentry-Rate-Limits": "1.23456:error"}, NOW)
    assert limits.snapshot(NOW) == {"error": 1.235}


def test_absurdly_long_pauses_are_capped_at_a_day() -> None:
    from otel_sentry_biz.sentry.ratelimits import MAX_RETRY_AFTER

    assert parse_retry_after("1e308", 0.0) == MAX_RETRY_AFTER == 86400.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0.0) == MAX_RETRY_AFTER
    assert parse_rate_limits("1e308:transaction", 100.0) == {"transaction": 100.0 + 86400.0}
