"""The RuleSet: only rules that apply run, nothing raises, violations carry what on-call needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import pytest

from otel_sentry_biz.rules import Aggregate, RuleSet, Threshold
from otel_sentry_biz.rules.message import Values, render
from otel_sentry_biz.rules.spec import Finding, RuleSpec
from otel_sentry_biz.rules.state import StoreUnavailable
from tests.rules.conftest import rules_of

CALLS: list[str] = []


@dataclass(frozen=True)
class Spy(RuleSpec):
    """A custom kind: adding one takes a spec dataclass with build() (no registry needed here)."""

    kind: ClassVar[str] = "spy"
    default_message: ClassVar[str] = "spied {span.name}"
    explode: bool = False

    def build(self, context):
        return _SpyCheck(self.name, self.explode)


class _SpyCheck:
    def __init__(self, name, explode):
        self.name, self.explode = name, explode

    def check(self, span):
        CALLS.append(self.name)
        if self.explode:
            raise RuntimeError("rule bug")
        return (Finding({}),)


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


def test_rules_for_other_spans_are_never_looked_at(judge):
    judge.use(*(Spy(name=f"rule-{n}", span=f"op-{n}") for n in range(500)))
    assert rules_of(judge.span("op-7")) == ["rule-7"]
    assert rules_of(judge.span("op-7")) == ["rule-7"]
    assert judge.span("unrelated") == []
    assert CALLS == ["rule-7", "rule-7"]


def test_rules_needing_an_attribute_skip_spans_without_it(judge):
    judge.use(*(Spy(name=f"needs-{n}", requires=f"key{n}") for n in range(200)))
    assert rules_of(judge.span(key3="x")) == ["needs-3"]
    assert CALLS == ["needs-3"]


def test_globs_ops_and_status_select_spans(judge):
    judge.use(
        Spy(name="by_glob", span="process_*"),
        Spy(name="by_op", op="db.*"),
        Spy(name="errors", status="error"),
    )
    assert rules_of(judge.span("process_work_request")) == ["by_glob"]
    assert rules_of(judge.span("SELECT", attributes={"sentry.op": "db.query"})) == ["by_op"]
    assert rules_of(judge.span("x", error=True)) == ["errors"]


def test_a_failing_rule_is_logged_and_the_others_still_run(judge, caplog):
    judge.use(Spy(name="broken", explode=True), Spy(name="fine"))
    with caplog.at_level(logging.ERROR, logger="otel_sentry_biz.rules"):
        assert rules_of(judge.span()) == ["fine"]
    assert "rule 'broken' failed on span 'op'" in caplog.text


def test_an_unavailable_store_skips_windowed_rules_without_raising(judge):
    class Down:
        def incr(self, *args):
            raise StoreUnavailable("down")

        add_once = put_if_absent = get = delete = incr

        def close(self):
            pass

    rules = judge.use(
        Aggregate(name="total", attribute="amount", window="1d", above=1),
        Threshold(name="big", attribute="amount", above=1),
        state=Down(),
    )
    assert rules_of(judge.span(amount=5)) == ["big"]
    assert rules.store_errors == 1


def test_message_templates_never_raise():
    values = Values({"value": 12.5, "name": "ACME"}, {"biz.customer": "ACME"}.get)
    assert render("{value:,.2f} {nope} {name:.2f} {biz.customer}", values) == (
        "12.50 <nope?> ACME ACME"
    )
    assert render("{value!x}", values) == "12.5"


def test_violation_data_alert_tiers_and_fingerprint(judge):
    judge.use(
        Threshold(name="big", attribute="amount", above=10, impact="LOW", group_by="customer"),
        Threshold(
            name="huge",
            attribute="amount",
            above=100,
            impact="HIGH",
            alert_tier="page",
            fingerprint=["huge", "{customer}"],
            risk=40,
        ),
        alert_tiers={"LOW": "weekly"},
    )
    low, high = judge.span(amount=500, customer="ACME")
    assert low["biz.violation.data.alert_tier"] == "weekly"
    assert low["biz.violation.risk"] == 1.0  # LOW's default
    assert low["biz.violation.data.customer"] == "ACME"
    assert "biz.violation.fingerprint" not in low
    assert high["biz.violation.data.alert_tier"] == "page"
    assert high["biz.violation.fingerprint"] == ("huge", "ACME")
    assert high["biz.violation.risk"] == 40.0


def test_risk_accumulates_per_trace(judge, tracer):
    rules = judge.use(Threshold(name="big", attribute="amount", above=10, impact="CRITICAL"))
    with tracer.start_as_current_span("request") as root:
        first = judge.span(amount=50)
        second = judge.span(amount=60)
    assert first[0]["biz.violation.data.trace_risk"] == 25.0
    assert second[0]["biz.violation.data.trace_risk"] == 50.0
    assert rules.trace_risk(root.get_span_context().trace_id) == 50.0
    assert judge.span(amount=70)[0]["biz.violation.data.trace_risk"] == 25.0  # a new trace


def test_trace_risk_memory_is_bounded():
    from otel_sentry_biz.rules.alerting import TraceRisk

    risk = TraceRisk(capacity=3)
    for trace_id in range(10):
        risk.add(trace_id, 1.0)
    assert [risk.score(t) for t in range(10)] == [0.0] * 7 + [1.0] * 3


def test_stateless_rule_sets_open_no_store():
    assert (
        RuleSet([Threshold(name="t", attribute="a", above=1)], state="redis://x:1/0").store is None
    )
