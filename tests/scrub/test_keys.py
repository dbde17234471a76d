"""Secrets by key name: at least sentry-sdk's denylists, in every spelling a key comes in."""

from __future__ import annotations

import pytest
from sentry_sdk import scrubber as sdk_scrubber

from otel_sentry_biz.scrub import KeyMatcher, normalize_key
from otel_sentry_biz.scrub.keys import SENTRY_SDK_DENYLIST, SENTRY_SDK_PII_DENYLIST

keys = KeyMatcher()


def test_our_copy_of_sentry_sdks_denylists_is_current():
    assert set(SENTRY_SDK_DENYLIST) >= set(sdk_scrubber.DEFAULT_DENYLIST)
    assert set(SENTRY_SDK_PII_DENYLIST) >= set(sdk_scrubber.DEFAULT_PII_DENYLIST)


@pytest.mark.parametrize(
    "entry", [*sdk_scrubber.DEFAULT_DENYLIST, *sdk_scrubber.DEFAULT_PII_DENYLIST]
)
def test_every_sentry_sdk_denylist_entry_matches_in_any_case_and_with_any_prefix(entry):
    # sentry-sdk's EventScrubber matches k.lower() in the list exactly; ours must be wider.
    for key in (entry, entry.upper(), entry.lower(), entry.title()):
        assert keys.is_sensitive(key), key
    for prefixed in (f"http.request.header.{entry}", f"biz.{entry}", f"x-{entry}"):
        assert keys.is_sensitive(prefixed), prefixed


@pytest.mark.parametrize(
    "key",
    [
        "http.request.header.authorization",
        "http.response.header.set-cookie",
        "http.request.header.x-api-key",
        "biz.user_password",
        "biz.userpassword",
        "X-Api-Key",
        "x_api_key",
        "xApiKey",
        "apiKey",
        "APIKey",
        "accessToken",
        "refresh_token",
        "oauth.access_token",
        "X-Auth-Token",
        "client_secret",
        "AWS_SECRET_ACCESS_KEY",
        "db.password",
        "mysql_pwd",
        "PHPSESSID",
        "connect.sid",
        "XSRF-TOKEN",
        "session.id",
        "sessionId",
        "stripe.api_key",
        "private_key_pem",
        "credentials",
        "card_number",
        "cvv",
        "otp",
        "sentry.dsn",
    ],
)
def test_secret_keys_in_dotted_prefixed_and_camel_spellings(key):
    assert keys.is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "llm.token_count.total",
        "max_tokens",
        "tokenizer",
        "author",
        "authority",
        "user.authenticated",
        "http.route",
        "url.full",
        "db.query.text",
        "biz.customer",
        "biz.amount",
        "keyboard",
        "passenger_count",
        "description",
        "monkey",
        "spinner",
    ],
)
def test_ordinary_keys_are_kept(key):
    assert not keys.is_sensitive(key)


@pytest.mark.parametrize(
    "key", ["ip_address", "user.ip_address", "client.address", "X-Real-IP", "user.email"]
)
def test_personal_data_keys_depend_on_send_default_pii(key):
    assert KeyMatcher(send_default_pii=False).is_sensitive(key)
    assert not KeyMatcher(send_default_pii=True).is_sensitive(key)


def test_secret_keys_are_scrubbed_even_with_send_default_pii():
    matcher = KeyMatcher(send_default_pii=True)
    assert matcher.is_sensitive("http.request.header.authorization")
    assert matcher.is_sensitive("X-Forwarded-For")  # in sentry-sdk's secret denylist too


def test_extra_denylist_entries_match_like_built_in_ones():
    matcher = KeyMatcher(["customer_iban", "PIN-Code"])
    assert matcher.is_sensitive("biz.customer_iban")
    assert matcher.is_sensitive("customerIban")
    assert matcher.is_sensitive("biz.pin_code")
    assert not matcher.is_sensitive("biz.customer")


def test_safe_keys_win_over_the_denylist():
    matcher = KeyMatcher(safe_keys=["biz.auth_method"])
    assert not matcher.is_sensitive("biz.auth_method")
    assert matcher.is_sensitive("biz.auth_token")


def test_the_decision_cache_stays_bounded():
    matcher = KeyMatcher()
    for index in range(10_000):
        matcher.is_sensitive(f"key_{index}")
    assert len(matcher.decided) <= 4096


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("X-Api-Key", "x_api_key"),
        ("http.request.header.authorization", "http_request_header_authorization"),
        ("accessToken", "access_token"),
        ("  odd--key..", "odd_key"),
    ],
)
def test_normalize_key(key, normalized):
    assert normalize_key(key) == normalized
