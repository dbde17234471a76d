"""Each value detector: what it finds, and the look-alikes it leaves alone."""

from __future__ import annotations

import pytest

from otel_sentry_biz.scrub import FILTERED, Scrubber, ScrubConfig
from otel_sentry_biz.scrub.detectors import card_valid, iban_valid, luhn_valid

scrub = Scrubber().scrub_text


def data(text: str) -> str:
    """Scrub as a data value (span data, extra): password mentions drop the whole text."""
    return Scrubber().scrub_attributes({"note": text})["note"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payment failed for ana.silva@example.com", "payment failed for [Filtered]"),
        ("to: j.doe+shop@corp.example.org,", "to: [Filtered],"),
        ("mailto:ops@example.co.uk", "mailto:[Filtered]"),
    ],
)
def test_email_addresses_are_replaced(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "see @channel for details",
        "python@3.11 runtime",
        "https://user@example.com/path",  # a URL's user name, not an address
        "git@github",
    ],
)
def test_things_with_an_at_sign_are_not_addresses(text):
    assert scrub(text) == text


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "2223000048400011",
    ],
)
def test_card_numbers_passing_luhn_are_replaced(number):
    assert scrub(f"charged {number} today") == "charged [Filtered] today"


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112",  # fails Luhn: a random 16-digit id
        "id 1234567812345678",  # fails Luhn
        "ts 1717243200000000000",  # nanoseconds, passes no card-network prefix
        "trace 00000000000000000000000000000001",
        "version 4.111.111.111",
        "4111111111111",  # 13 digits, fails Luhn
    ],
)
def test_numbers_that_are_not_cards_stay(text):
    assert scrub(text) == text


def test_luhn_and_card_checks():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert card_valid("4111111111111111")
    assert not card_valid("1111111111111117")  # Luhn-valid, but no card network starts with 1
    assert not card_valid("411111111111")  # too short


def test_card_numbers_as_integers_are_replaced():
    out = Scrubber().scrub_attributes({"biz.card": 4111111111111111, "biz.order": 4111111111111112})
    assert out == {"biz.card": FILTERED, "biz.order": 4111111111111112}


@pytest.mark.parametrize("ssn", ["123-45-6789", "078-05-1120", "219-09-9999"])
def test_us_social_security_numbers_are_replaced(ssn):
    assert scrub(f"applicant {ssn} rejected") == "applicant [Filtered] rejected"


@pytest.mark.parametrize(
    "text",
    ["date 2024-05-1234", "000-12-3456 is not issued", "666-12-3456", "123-00-4567", "1234-56-789"],
)
def test_ssn_shaped_but_impossible_numbers_stay(text):
    assert scrub(text) == text


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "NO9386011117947",
    ],
)
def test_ibans_with_a_valid_checksum_are_replaced(iban):
    assert scrub(f"refund to {iban} queued") == "refund to [Filtered] queued"


def test_a_spaced_iban_followed_by_capitals_is_cut_at_its_country_length():
    assert scrub("to DE89 3704 0044 0532 0130 00 END") == "to [Filtered] END"


@pytest.mark.parametrize(
    "text",
    ["ref DE88370400440532013000", "ref GB82WEST12345698765433", "SKU AB12CDEF345678901234"],
)
def test_iban_shaped_codes_failing_mod_97_stay(text):
    assert scrub(text) == text
    assert not iban_valid(text.split()[1])


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.DEF-123_x", "abc.DEF-123_x"),
        ("retry with bearer eyJabc/def+ghi==", "eyJabc/def+ghi=="),
        ("using Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ],
)
def test_bearer_and_basic_credentials_are_replaced(text, secret):
    out = scrub(text)
    assert secret not in out
    assert FILTERED in out


def test_basic_followed_by_a_word_is_not_a_credential():
    assert scrub("Basic authentication is disabled") == "Basic authentication is disabled"


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_live_51H8sdfKJHkjhsdf8923",
        "rk_live_51H8sdfKJHkjhsdf8923",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "gho_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAIOSFODNN7EXAMPLE",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-123456789012-abcdefghij",
        "xapp-not-slack-but-xoxa-1234567890-abcdef",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "glpat-abcdefghij0123456789",
    ],
)
def test_vendor_api_keys_are_replaced(key):
    out = scrub(f"client configured with {key} ok")
    assert key not in out
    assert out.startswith("client configured with ") and out.endswith(" ok")


@pytest.mark.parametrize(
    "text",
    [
        "task_live_update finished",
        "ghp_short",
        "AKIA1234",  # too short for an access key id
        "skip-this-step please",
        "xox is a game",
    ],
)
def test_prefix_look_alikes_are_not_api_keys(text):
    assert scrub(text) == text


def test_jwts_are_replaced():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert scrub(f"token expired: {jwt}") == "token expired: [Filtered]"
    assert scrub("eyJust kidding.eyJa.b") == "eyJust kidding.eyJa.b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "could not connect to postgres://billing:s3cr3t@db.internal:5432/app",
            "could not connect to postgres://billing:[Filtered]@db.internal:5432/app",
        ),
        ("ftp://u:p4ss@ftp.example/x.csv", "ftp://u:[Filtered]@ftp.example/x.csv"),
        ("https://example.com:8443/path", "https://example.com:8443/path"),
    ],
)
def test_passwords_in_urls_are_replaced_keeping_the_url(text, expected):
    assert scrub(text) == expected


def test_private_keys_lose_their_body():
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7a\n-----END RSA PRIVATE KEY-----"
    assert "MIIEowIBAAKCAQEA7a" not in scrub(f"loaded {pem}")
    cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"  # truncated key
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in scrub(cut)
    public = (
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    )
    assert scrub(public) == public


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /rates?currency=EUR&api_key=abc123", "GET /rates?currency=EUR&api_key=[Filtered]"),
        ("/cb?code=7&access_token=tok#frag", "/cb?code=7&access_token=[Filtered]#frag"),
        ("login user=bob password=hunter2", "login user=bob password=[Filtered]"),
        (
            '{"user": "bob", "password": "it\'s secret"}',
            '{"user": "bob", "password": "[Filtered]"}',
        ),
        ("{'apiKey': 'k-123'}", "{'apiKey': '[Filtered]'}"),
        ("X-Api-Key: k123", "X-Api-Key: [Filtered]"),
        ("new password is Hunter2!", "new password is [Filtered]"),
        ("Cookie: _ga=GA1.2; sid=abc", "Cookie: [Filtered]"),
        ("Authorization: Digest username=bob, response=6629fae4", "Authorization: [Filtered]"),
        ("session_token = 'abc'", "session_token = '[Filtered]'"),
    ],
)
def test_assignments_to_sensitive_names_lose_their_value(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "input_tokens=512 output_tokens=20",
        "author: Ana",
        "WHERE email = %s AND token = $1 AND pin = :pin",
        "time 12:30:00 status=ok",
        "https://example.com/a?page=2",
    ],
)
def test_assignments_to_other_names_or_placeholders_stay(text):
    assert scrub(text) == text


def test_a_password_mentioned_in_a_data_value_drops_the_value_but_not_a_message():
    text = "user typed password hunter2"
    assert data(text) == FILTERED
    assert scrub(text) == text  # prose keeps its words; there is no secret we can point at
    assert data("password=hunter2 for bob") == "password=[Filtered] for bob"


def test_custom_patterns_replace_the_match_or_its_secret_group():
    scrubber = Scrubber(
        ScrubConfig(
            patterns={
                "internal_id": r"\bID-\d{6,}\b",
                "pin": r"PIN (?P<secret>\d{4})",
            }
        )
    )
    assert scrubber.scrub_text("case ID-123456 PIN 4821") == "case [Filtered] PIN [Filtered]"
    assert scrubber.scrub_text("ID-12 is short") == "ID-12 is short"


def test_detectors_can_be_switched_off():
    scrubber = Scrubber(ScrubConfig(detectors=frozenset({"card"})))
    assert scrubber.scrub_text("ana@example.com 4111111111111111") == "ana@example.com [Filtered]"


def test_the_replacement_marker_is_configurable():
    scrubber = Scrubber(ScrubConfig(replacement="<redacted>"))
    assert scrubber.scrub_text("ana@example.com password=x") == "<redacted> password=<redacted>"
