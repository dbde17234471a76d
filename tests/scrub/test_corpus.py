"""The issue's measurement: nothing Sentry's default server-side scrubbing would remove may
survive our scrubber (``benchmarks/scrub_corpus.py`` prints the counts)."""

from __future__ import annotations

import pytest

from otel_sentry_biz.scrub import Scrubber
from tests.relay_oracle import assert_valid
from tests.scrub.corpus import Case, build_corpus, relay_defaults, surviving

CORPUS = build_corpus()
scrubber = Scrubber()


def _ids(case: Case) -> str:
    return case.name


def test_the_corpus_is_large_and_covers_every_kind_and_field():
    assert len(CORPUS) >= 50
    fields = {case.field for case in CORPUS}
    assert fields >= {
        "message",
        "exception",
        "breadcrumb",
        "breadcrumb data",
        "request url",
        "query string",
        "headers",
        "cookies",
        "tags",
        "extra",
        "contexts",
        "span data",
        "span description",
        "trace data",
        "frame vars",
        "user",
    }
    names = " ".join(case.name for case in CORPUS)
    for kind in (
        "email",
        "visa",
        "ssn",
        "iban",
        "bearer",
        "stripe",
        "github",
        "aws",
        "slack",
        "api_key",
        "jwt",
        "url password",
        "password",
        "private key",
        "literal",
    ):
        assert kind in names, kind


@pytest.mark.parametrize("case", CORPUS, ids=_ids)
def test_nothing_relay_defaults_remove_survives_ours(case):
    left_by_relay = surviving(case.secrets, relay_defaults(case.event))
    left_by_us = surviving(case.secrets, scrubber.scrub_event(case.event))
    assert set(left_by_us) <= set(left_by_relay)


@pytest.mark.parametrize("case", CORPUS, ids=_ids)
def test_only_the_known_gaps_survive_ours(case):
    left = surviving(case.secrets, scrubber.scrub_event(case.event))
    assert bool(left) is case.gap, left


@pytest.mark.parametrize("case", [c for c in CORPUS if c.decoys], ids=_ids)
def test_look_alikes_that_are_not_secrets_are_kept(case):
    assert surviving(case.decoys, scrubber.scrub_event(case.event)) == list(case.decoys)


@pytest.mark.parametrize("case", CORPUS, ids=_ids)
def test_events_stay_valid_for_sentry_after_scrubbing(case):
    assert_valid(case.event)
    assert_valid(scrubber.scrub_event(case.event))


def test_relay_defaults_leave_more_than_we_do():
    planted = sum(len(case.secrets) for case in CORPUS)
    by_relay = sum(len(surviving(c.secrets, relay_defaults(c.event))) for c in CORPUS)
    by_us = sum(len(surviving(c.secrets, scrubber.scrub_event(c.event))) for c in CORPUS)
    assert by_us < by_relay < planted
