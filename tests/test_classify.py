"""The default classifier's keywords match at word starts, CamelCase and snake_case included."""

from __future__ import annotations

import pytest

from otel_sentry_biz.classify import ClassificationRule, ErrorClassifier, searchable
from otel_sentry_biz.impact import Category, Impact

CLASSIFIER = ErrorClassifier()


@pytest.mark.parametrize(
    ("exception_type", "message"),
    [
        ("RuntimeError", "information missing"),  # "format" inside a word
        ("RuntimeError", "transformation step failed"),  # "format"
        ("RuntimeError", "sparse matrix"),  # "parse"
    ],
)
def test_a_keyword_inside_a_word_does_not_classify(exception_type: str, message: str) -> None:
    # Each of these once matched a default keyword in the middle of a word.
    assert CLASSIFIER.classify(exception_type, message) == CLASSIFIER.classify("RuntimeError")


@pytest.mark.parametrize(
    ("exception_type", "message", "impact", "category"),
    [
        ("CardPaymentError", "declined", Impact.CRITICAL, None),
        ("RuntimeError", "stripe_charge failed", Impact.CRITICAL, None),
        ("RuntimeError", "Formatting of the row failed", None, Category.DATA_QUALITY),
        ("SchemaValidationError", "", None, Category.DATA_QUALITY),
        ("HTTPConnectionPool", "gave up", None, Category.INTEGRATION),
        ("APIError", "bad gateway", None, Category.INTEGRATION),
        ("RuntimeError", "Unauthorised access", None, Category.SECURITY),
    ],
)
def test_keywords_match_at_word_starts_in_every_spelling(
    exception_type: str, message: str, impact: Impact, category: Category
) -> None:
    found = CLASSIFIER.classify(exception_type, message)
    if impact is not None:
        assert found.impact is impact
    if category is not None:
        assert found.category is category


def test_searchable_text_splits_camel_case_and_lowers() -> None:
    assert searchable("HTTPConnectionPool", "CardPaymentError x_y") == (
        "http connection pool card payment error x_y"
    )


def test_a_rule_of_the_app_matches_phrases_and_prefixes_the_same_way() -> None:
    rule = ClassificationRule(keywords=("double book", "Refund"), impact=Impact.HIGH)
    assert rule.matches(frozenset(), searchable("DoubleBookingError"))
    assert rule.matches(frozenset(), searchable("refunding order 7"))
    assert not rule.matches(frozenset(), searchable("nonrefundable fee"))


def test_a_huge_message_is_classified_by_its_start() -> None:
    # Classification runs on the app thread: a megabyte message is read only as far as a
    # message names what failed (a full read took ~0.3 s of regex work per error).
    huge = "connection refused " + "x" * 1_000_000 + " payment"
    found = CLASSIFIER.classify("RuntimeError", huge, span_name="y" * 100_000)
    assert found.category is Category.INTEGRATION
    assert found.impact is not Impact.CRITICAL  # "payment" is a megabyte in: not read
    assert len(searchable(huge, "z" * 5000)) <= 2 * 1024 + 1
