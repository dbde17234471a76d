from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz import ClassificationRule, ErrorClassifier, Impact, Violation
from otel_sentry_biz.rules import FailureBudget, RuleSet


class PaymentDeclined(Exception):
    pass


def _span(exporter, name):
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_clean_span_is_passed_on_unchanged(finished, tracer):
    seen = []

    class Capture(SimpleSpanProcessor):
        def on_end(self, span):
            seen.append(span)

    processor = biz.BusinessSpanProcessor(next=Capture(InMemorySpanExporter()))
    with tracer.start_as_current_span("clean"):
        pass
    (clean,) = finished.get_finished_spans()
    processor.on_end(clean)
    assert seen[0] is clean  # the very same object: no copy on the hot path


def test_failed_span_gets_impact_and_category(finished, tracer):
    with pytest.raises(ConnectionError), tracer.start_as_current_span("call-erp"):
        raise ConnectionError("erp unreachable")
    span = _span(finished, "call-erp")
    assert span.attributes["biz.impact"] == "HIGH"
    assert span.attributes["biz.category"] == "integration"
    (event,) = span.events
    assert event.attributes["biz.category"] == "integration"


@pytest.mark.parametrize(
    ("exc", "impact", "category"),
    [
        (PaymentDeclined("card refused"), "CRITICAL", "business_logic"),
        (ValueError("invalid date format"), "MEDIUM", "data_quality"),
        (MemoryError(), "HIGH", "system_resource"),
        (PermissionError("permission denied"), "HIGH", "security"),
        (TimeoutError("timed out"), "HIGH", "integration"),
        (RuntimeError("boom"), "LOW", "business_logic"),
    ],
)
def test_default_mapping_follows_the_billing_seed(finished, tracer, exc, impact, category):
    with pytest.raises(type(exc)), tracer.start_as_current_span("op"):
        raise exc
    attrs = _span(finished, "op").attributes
    assert (attrs["biz.impact"], attrs["biz.category"]) == (impact, category)


def test_classifier_override_wins_over_defaults(use_processor, tracer):
    exporter = InMemorySpanExporter()
    classifier = ErrorClassifier(
        rules=[ClassificationRule(exception_types=("ValueError",), impact="CRITICAL")]
    )
    use_processor.target = biz.BusinessSpanProcessor(
        next=SimpleSpanProcessor(exporter), classifier=classifier
    )
    with pytest.raises(ValueError), tracer.start_as_current_span("op"):
        raise ValueError("bad")
    attrs = _span(exporter, "op").attributes
    assert attrs["biz.impact"] == "CRITICAL"
    assert attrs["biz.category"] == "data_quality"  # the override had no category opinion


def test_operation_declared_impact_outranks_default(finished):
    with (
        pytest.raises(ValueError),
        biz.operation("import_rows", impact="HIGH", category="integration"),
    ):
        raise ValueError("bad row")
    span = _span(finished, "import_rows")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["biz.impact"] == "HIGH"
    assert span.events[0].attributes["biz.category"] == "integration"


def test_operation_rejects_unknown_impact_at_decoration_time():
    with pytest.raises(ValueError, match="use one of CRITICAL, HIGH, MEDIUM, LOW"):
        biz.operation("x", impact="SEVERE")


def test_operation_is_a_decorator_and_children_inherit_its_attributes(finished, tracer):
    @biz.operation("close_month", op="billing", period="2026-11")
    def close_month():
        with tracer.start_as_current_span("child"):
            return "done"

    assert close_month() == "done"
    parent, child = _span(finished, "close_month"), _span(finished, "child")
    assert child.parent.span_id == parent.context.span_id
    assert parent.attributes["sentry.op"] == "billing"
    assert child.attributes["biz.period"] == "2026-11"
    assert child.attributes["biz.operation"] == "close_month"


def test_capture_error_records_a_handled_exception_with_judgement(finished, tracer):
    with tracer.start_as_current_span("pay"):
        try:
            raise PaymentDeclined("insufficient funds")
        except PaymentDeclined as exc:
            event_id = biz.capture_error(
                exc, impact="CRITICAL", category="business_logic", order="O-7"
            )
    (event,) = _span(finished, "pay").events
    assert len(event_id) == 32
    assert event.attributes["sentry.event_id"] == event_id
    assert event.attributes["biz.handled"] is True
    assert event.attributes["biz.impact"] == "CRITICAL"
    assert event.attributes["biz.order"] == "O-7"


def test_capture_error_with_bad_impact_still_reports(finished, caplog):
    assert biz.capture_error(ValueError("x"), impact="HUGE") is not None
    (span,) = finished.get_finished_spans()
    assert span.name == "capture_error"
    assert span.events[0].attributes["biz.impact"] == "MEDIUM"  # default classification
    assert "HUGE" in caplog.text


def test_violation_is_a_span_event(finished, tracer):
    with tracer.start_as_current_span("wr"):
        biz.violation("work_request_limit", "HIGH", "WR-7 over limit", group="WR-7", amount=18200.0)
    (event,) = _span(finished, "wr").events
    assert event.name == "biz.violation"
    assert event.attributes["biz.violation.rule"] == "work_request_limit"
    assert event.attributes["biz.violation.group"] == "WR-7"
    assert event.attributes["biz.violation.data.amount"] == 18200.0


class AmountLimit:
    name = "amount_limit"

    def evaluate(self, span):
        amount = (span.attributes or {}).get("biz.amount")
        if amount is not None and amount > 15000:
            yield Violation(self.name, Impact.HIGH, f"amount {amount} > 15000", group="wr")


class Broken:
    name = "broken"

    def evaluate(self, span):
        raise RuntimeError("rule bug")


def test_rules_seam_records_violations_on_the_span_handed_on(use_processor, tracer):
    exporter = InMemorySpanExporter()
    use_processor.target = biz.BusinessSpanProcessor(
        next=SimpleSpanProcessor(exporter), rules=[Broken(), AmountLimit()]
    )
    with tracer.start_as_current_span("small", attributes={"biz.amount": 10.0}):
        pass
    with tracer.start_as_current_span("big", attributes={"biz.amount": 18000.0}):
        pass
    assert _span(exporter, "small").events == ()
    (event,) = _span(exporter, "big").events
    assert event.attributes["biz.violation.rule"] == "amount_limit"
    assert event.attributes["biz.violation.impact"] == "HIGH"


def test_processor_rejects_something_that_is_not_a_rule():
    with pytest.raises(TypeError, match="evaluate"):
        biz.BusinessSpanProcessor(rules=[object()])


class SourceDown(Exception):
    pass


def _monitor_failures(failures: int = 3) -> RuleSet:
    budget = FailureBudget(
        name="monitor_failures", span="monitor.check", group_by="monitor_id", failures=failures
    )
    return RuleSet([budget], state="memory://")


def _failed_check(monitor_id: str) -> None:
    with pytest.raises(SourceDown), biz.operation("monitor.check", monitor_id=monitor_id):
        raise SourceDown("feed answered 503")


def test_on_violation_hears_of_a_spent_budget_before_the_code_that_ended_the_span_goes_on(
    use_processor, tracer
):
    exporter, told = InMemorySpanExporter(), []
    use_processor.target = biz.BusinessSpanProcessor(
        next=SimpleSpanProcessor(exporter), rules=[_monitor_failures()], on_violation=told.append
    )
    heard_after_each_check = []
    for _ in range(4):
        _failed_check("mon-1")
        heard_after_each_check.append(len(told))
    assert heard_after_each_check == [0, 0, 1, 1]  # the third failure in a row, once
    (violation,) = told
    assert isinstance(violation, Violation)
    assert (violation.rule, violation.group) == ("monitor_failures", "mon-1")
    # The very violation the exporters get on the span that fired it.
    third = exporter.get_finished_spans()[2]
    (event,) = [e for e in third.events if e.name == "biz.violation"]
    assert dict(event.attributes) == violation.event_attributes()


def test_on_violation_that_raises_is_logged_and_the_span_still_goes_out(
    use_processor, tracer, caplog
):
    exporter, told = InMemorySpanExporter(), []

    def fragile(violation: Violation) -> None:
        told.append(violation.rule)
        if violation.rule == "amount_limit":
            raise RuntimeError("app handler bug")

    use_processor.target = biz.BusinessSpanProcessor(
        next=SimpleSpanProcessor(exporter),
        rules=[AmountLimit(), _monitor_failures(failures=1)],
        on_violation=fragile,
    )
    with pytest.raises(SourceDown), biz.operation("monitor.check", monitor_id="m", amount=20_000):
        raise SourceDown("down")  # never the handler's RuntimeError
    assert told == ["amount_limit", "monitor_failures"]  # one failing does not stop the next
    assert "app handler bug" in caplog.text
    (span,) = exporter.get_finished_spans()
    assert [
        e.attributes["biz.violation.rule"] for e in span.events if e.name == "biz.violation"
    ] == [
        "amount_limit",
        "monitor_failures",
    ]


def test_on_violation_hears_only_the_rules_not_what_the_app_recorded_itself(use_processor, tracer):
    told = []
    use_processor.target = biz.BusinessSpanProcessor(
        next=SimpleSpanProcessor(InMemorySpanExporter()),
        rules=[AmountLimit()],
        on_violation=told.append,
    )
    with tracer.start_as_current_span("wr", attributes={"biz.amount": 18_000.0}):
        biz.violation("work_request_limit", "HIGH", "WR-7 over limit", group="WR-7")
    assert [v.rule for v in told] == ["amount_limit"]


def test_on_violation_must_be_callable():
    with pytest.raises(TypeError, match="on_violation"):
        biz.BusinessSpanProcessor(on_violation="pause_monitor")
