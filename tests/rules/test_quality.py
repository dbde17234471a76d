"""validate_batch: data quality scores, recorded on real spans, violations under the floor."""

from __future__ import annotations

import dataclasses
import decimal
import math
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace

import otel_sentry_biz as biz
from otel_sentry_biz.rules import RuleError, parse_rules, risk
from otel_sentry_biz.rules.measurement import (
    MEASUREMENT_UNIT,
    MEASUREMENT_VALUE,
    measurement_problem,
    measurements,
)
from otel_sentry_biz.rules.quality import (
    DEFAULT_QUALITY_FLOOR,
    FieldSpec,
    Schema,
    SchemaError,
    load_schema,
    load_schemas,
    validate_batch,
)
from otel_sentry_biz.rules.risk import WindowRisk, process_risk, risk_snapshot

LINES = Schema(
    {
        "work_request": {"type": "str", "pattern": r"WR-\d+"},
        "quantity": {"type": "number", "min": 0, "max": 1000},
        "unit_price": {"type": "number", "min": 0.01},
        "work_date": "date",
        "status": {"allowed": ["open", "closed"], "required": False},
    },
    name="billing_lines",
)


def line(number: int = 1, **changes: Any) -> dict[str, Any]:
    row = {
        "work_request": f"WR-{1000 + number}",
        "quantity": 3,
        "unit_price": 12.5,
        "work_date": "2025-06-02",
        "status": "open",
    }
    row.update(changes)
    return {key: value for key, value in row.items() if value is not _DROP}


_DROP = object()


@pytest.fixture(autouse=True)
def fresh_process_risk() -> Iterator[None]:
    previous = process_risk()
    # A fixed clock: a test running across the top of the hour must not see two windows.
    risk._process_risk = WindowRisk(clock=lambda: 1_748_858_400.0)
    yield
    risk._process_risk = previous


@pytest.fixture
def spans(judge):
    """Real spans through TracerProvider -> BusinessSpanProcessor -> memory."""
    judge.use()
    return judge.exporter


def _only_span(exporter) -> Any:
    finished = exporter.get_finished_spans()
    assert len(finished) == 1
    return finished[0]


def _violations(span) -> list[dict[str, Any]]:
    return [dict(e.attributes) for e in span.events if e.name == "biz.violation"]


def test_a_clean_batch_scores_100_and_is_recorded_on_the_span(spans):
    with trace.get_tracer("tests").start_as_current_span("import invoices"):
        result = biz.validate_batch([line(n) for n in range(20)], LINES)
    assert (result.score, result.completeness, result.compliance) == (100.0, 100.0, 100.0)
    assert result.passed and result.rows == 20 and result.errors == () and result.warnings == ()
    span = _only_span(spans)
    attributes = span.attributes
    assert attributes["biz.quality.score"] == 100.0
    assert attributes["biz.quality.batch"] == "billing_lines"
    assert attributes["biz.quality.rows"] == 20
    assert attributes["biz.quality.passed"] is True
    assert attributes["biz.quality.floor"] == DEFAULT_QUALITY_FLOOR
    names = [event.name for event in span.events]
    assert names == ["biz.quality", "data_quality_score"]
    assert measurements([span]) == {"data_quality_score": {"value": 100.0, "unit": "none"}}
    assert _violations(span) == []
    assert risk_snapshot().violations == 0


def test_planted_errors_are_listed_scored_and_raise_one_violation(spans):
    rows = [line(n) for n in range(10)]
    rows[3] = line(3, unit_price=_DROP)  # incomplete
    rows[7] = line(7, quantity="lots")  # not a number
    with trace.get_tracer("tests").start_as_current_span("import invoices"):
        result = biz.validate_batch(rows, LINES)
    # completeness: 39 of 40 required cells; compliance: 48 of 49 present values (the
    # optional status counts when present); 2 of 10 rows with errors: -20.
    assert result.completeness == 97.5
    assert result.compliance == round(100 * 48 / 49, 2)
    assert result.score == round((97.5 + 100 * 48 / 49) / 2 - 20, 1) == 77.7
    assert not result.passed
    assert [(p.row, p.field, p.problem) for p in result.errors] == [
        (3, "unit_price", "missing"),
        (7, "quantity", "not a number"),
    ]
    assert result.errors[1].value == "lots"
    assert result.error_rows == (3, 7)
    assert result.window_risk == 5.0

    span = _only_span(spans)
    (found,) = _violations(span)
    assert found["biz.violation.rule"] == "data_quality"
    assert found["biz.violation.group"] == "billing_lines"
    assert found["biz.violation.category"] == "data_quality"
    assert found["biz.violation.impact"] == "MEDIUM"
    assert found["biz.violation.risk"] == 5.0
    assert found["biz.violation.data.score"] == 77.7
    assert found["biz.violation.data.error_rows"] == 2
    assert found["biz.violation.data.alert_tier"] == "daily_digest"
    assert found["biz.violation.data.window_risk"] == 5.0
    assert "billing_lines is 77.7, under the floor of 80" in found["biz.violation.message"]
    assert "unit_price: missing (1x)" in found["biz.violation.data.problems"]
    assert span.attributes["biz.quality.passed"] is False
    assert span.attributes["biz.quality.error_rows"] == 2
    snapshot = risk_snapshot()
    assert (snapshot.score, snapshot.violations) == (5.0, 1)
    assert snapshot.by_category["data_quality"] == 1 and snapshot.by_rule == {"data_quality": 5.0}


def test_floor_impact_and_name_are_configurable(spans):
    rows = [line(n) for n in range(10)]
    rows[0] = line(0, work_date="yesterday")
    rows[1] = line(1, work_request="X-1")
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("lenient"):
        assert biz.validate_batch(rows, LINES, floor=50).passed
    with tracer.start_as_current_span("strict"):
        result = biz.validate_batch(rows, LINES, floor=99, impact="HIGH", name="june_lines")
    lenient, strict = spans.get_finished_spans()
    assert _violations(lenient) == []
    (found,) = _violations(strict)
    assert found["biz.violation.impact"] == "HIGH"
    assert found["biz.violation.group"] == "june_lines"
    assert found["biz.violation.data.alert_tier"] == "within_1h"
    assert found["biz.violation.data.window_risk"] == 10.0 == result.window_risk
    schema = Schema({"amount": "number"}, name="payments", floor=100, impact="CRITICAL")
    with tracer.start_as_current_span("payments"):
        assert not biz.validate_batch([{"amount": 1}, {"amount": None}], schema).passed
    (found,) = _violations(spans.get_finished_spans()[-1])
    assert found["biz.violation.impact"] == "CRITICAL"
    assert found["biz.violation.data.window_risk"] == 35.0  # 10 + 25, this window


def test_warnings_are_minor_deductions_and_never_error_rows():
    schema = Schema(
        {"amount": "number", "foreman": {"type": "str", "severity": "warning"}}, name="w"
    )
    rows = [{"amount": 1, "foreman": "Chen"} for _ in range(9)] + [{"amount": 2}]
    result = validate_batch(rows, schema, record=False)
    assert result.error_count == 0 and result.error_rows == ()
    assert [(p.row, p.field, p.problem, p.severity) for p in result.warnings] == [
        (9, "foreman", "missing", "warning")
    ]
    # completeness 19/20, compliance 100, one row in ten with a warning: 2 points.
    assert result.score == round((95 + 100) / 2 - 2, 1) == 95.5
    assert result.passed


def test_bad_rows_never_raise():
    Point = namedtuple("Point", "amount when")

    @dataclasses.dataclass
    class Row:
        amount: Any
        when: Any

    class Exploding(dict):
        def get(self, *args: Any) -> Any:
            raise RuntimeError("broken mapping")

    def not_never(row: Any) -> Any:  # indexes the row: raises on objects
        return row["when"] != "never" or "when is never"

    schema = Schema(
        {"amount": {"type": "number", "min": -100}, "when": {"type": "datetime"}},
        name="odd",
        checks={"not_never": not_never},
    )
    rows = [
        {"amount": decimal.Decimal("12.50"), "when": "2025-06-02T10:00:00Z"},
        {"amount": "$1,520.00", "when": "2025-06-02 10:00"},
        {"amount": math.nan, "when": "2025-06-02T10:00:00"},  # NaN is missing
        None,
        "amount=3",
        [1, 2],
        42,
        Point(3, "2025-06-02T10:00:00"),  # attributes, but check indexes by key: raises
        Row(amount=-500, when="soon"),
        Exploding(amount=1),
        {"amount": float("inf"), "when": "2025-06-02T10:00:00"},
    ]
    result = validate_batch(rows, schema, record=False)
    assert result.rows == 11
    by_row = {}
    for problem in result.errors:
        by_row.setdefault(problem.row, []).append((problem.field, problem.problem))
    assert 0 not in by_row and 1 not in by_row
    assert by_row[2] == [("amount", "missing")]
    for index in (3, 4, 5, 6):
        assert by_row[index] == [
            (None, f"the row is a {type(rows[index]).__name__}, not a mapping")
        ]
    assert by_row[7] == [("not_never", "the check raised TypeError")]
    assert by_row[8] == [
        ("amount", "under the minimum -100"),
        ("when", "not an ISO date-time"),
        ("not_never", "the check raised TypeError"),
    ]
    assert by_row[9] == [
        ("amount", "cannot be read (RuntimeError)"),
        ("when", "cannot be read (RuntimeError)"),
        ("not_never", "the check raised KeyError"),
    ]
    assert by_row[10] == [("amount", "not a number")]
    assert 0 <= result.score < 80


def test_a_value_that_cannot_be_checked_is_an_error_of_its_row():
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    schema = Schema({"code": {"pattern": "A+"}}, name="hostile")
    result = validate_batch([{"code": Hostile()}, {"code": "AA"}], schema, record=False)
    assert [(p.row, p.problem) for p in result.errors] == [(0, "cannot be checked (RuntimeError)")]
    assert result.rows == 2


def test_an_iterable_that_fails_midway_is_an_error_of_the_batch():
    def rows():
        yield {"amount": 1}
        raise OSError("disk gone")

    result = validate_batch(rows(), {"amount": "number"}, record=False)
    assert result.rows == 1
    assert result.errors[-1].row is None
    assert result.errors[-1].problem == "reading the rows failed (OSError)"
    for bad in ("not rows", {"amount": 1}):
        assert validate_batch(bad, {"amount": "number"}, record=False).error_count == 1
    empty = validate_batch([], {"amount": "number"}, record=False)
    assert (empty.score, empty.rows, empty.passed) == (100.0, 0, True)
    assert validate_batch(None, {"amount": "number"}, record=False).score == 100.0


def test_types_ranges_allowed_values_and_patterns():
    schema = Schema(
        {
            "count": {"type": "int", "min": 1, "max": 10},
            "flag": "bool",
            "day": {"type": "date", "min": "2025-01-01", "max": "2025-12-31"},
            "state": {"allowed": ["open", "closed"], "required": False},
            "code": {"type": "int", "allowed": [1, 2, 3], "required": False},
            "zip": {"pattern": r"\d{5}", "required": False},
        },
        name="types",
    )
    good = [
        {"count": 3, "flag": True, "day": "2025-06-02"},
        {"count": "7", "flag": "yes", "day": "2025-06-02", "code": "2", "zip": 12345},
        {"count": 4.0, "flag": 0, "day": "2025-06-02", "state": "closed", "zip": "01234"},
    ]
    assert validate_batch(good, schema, record=False).errors == ()
    bad = [
        {"count": 11, "flag": True, "day": "2025-06-02"},
        {"count": 2.5, "flag": True, "day": "2025-06-02"},
        {"count": True, "flag": "maybe", "day": "2024-12-31"},
        {"count": 1, "flag": True, "day": "2025-06-02", "state": "lost", "code": 9},
        {"count": 1, "flag": True, "day": "2025-06-02", "zip": "1234"},
    ]
    problems = [(p.row, p.field, p.problem) for p in validate_batch(bad, schema).errors]
    assert problems == [
        (0, "count", "over the maximum 10"),
        (1, "count", "not an integer"),
        (2, "count", "not an integer"),
        (2, "flag", "not true or false"),
        (2, "day", "under the minimum 2025-01-01"),
        (3, "state", "not one of open, closed"),
        (3, "code", "not one of 1, 2, 3"),
        (4, "zip", r"does not match \d{5}"),
    ]


def test_problem_lists_are_bounded_but_counts_are_exact():
    rows = [{"amount": "x"} for _ in range(500)]
    result = validate_batch(rows, {"amount": "number"}, max_problems=10, record=False)
    assert len(result.errors) == 10 and result.error_count == 500
    assert len(result.error_rows) == 500 and result.score == 0.0
    assert result.summary == ("amount: not a number (500x)",)
    assert len(validate_batch(rows, {"amount": "number"}, max_problems=None).errors) == 500


def test_bad_schema_definitions_fail_at_definition_naming_field_and_fix():
    with pytest.raises(SchemaError) as caught:
        Schema(
            {
                "amount": {"type": "numbr", "min": 5, "max": 1},
                "code": {"pattern": "WR-(", "severity": "fatal"},
                "name": {"type": "str", "min": 1},
                "status": {"alowed": ["a"]},
                "when": {"type": "date", "min": "last year"},
                "kind": {"allowed": "open"},
                "other": 42,
            },
            name="bad",
            floor=120,
            impact="HUGE",
            checks={"total": "not a function"},
        )
    text = str(caught.value)
    for expected in (
        "schema 'bad': field 'amount': unknown type 'numbr' (did you mean 'number'?)",
        "field 'amount': min 5 is over max 1: swap them",
        "field 'code': pattern 'WR-(' is not a valid regular expression",
        "field 'code': unknown severity 'fatal': use error or warning",
        "field 'name': min does not apply to type str",
        "field 'status': unknown key 'alowed' (did you mean 'allowed'?)",
        "field 'when': min must be an ISO date for a date field",
        "field 'kind': allowed must be a list of values",
        "field 'other': 42 is not a field spec",
        "floor 120 is outside 0-100",
        "unknown impact 'HUGE'",
        "check 'total': 'not a function' is not callable",
    ):
        assert expected in text, expected
    assert isinstance(caught.value, ValueError)
    with pytest.raises(SchemaError, match="no fields"):
        Schema({})
    with pytest.raises(SchemaError, match="floor must be a number"):
        validate_batch([], LINES, floor="high")
    with pytest.raises(SchemaError, match="max_problems"):
        validate_batch([], LINES, max_problems=-1)
    assert FieldSpec(type="float").problems() == []


SCHEMA_FILE = """
[[rule]]
name = "unit_price_range"
kind = "threshold"
attribute = "unit_price"
at_or_above = 500

[[schema]]
name = "billing_lines"
floor = 85
impact = "HIGH"

[schema.fields]
work_request = { type = "str", pattern = 'WR-\\d+' }
quantity = { type = "number", min = 0, max = 1000 }
work_date = { type = "date", min = 2020-01-01 }
status = { allowed = ["open", "closed"], required = false }
foreman = "str"
"""


def test_schemas_load_from_a_rules_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(SCHEMA_FILE)
    assert parse_rules(SCHEMA_FILE).rules  # the rules still load beside the schema
    schema = load_schema(path)
    assert (schema.name, schema.floor, schema.impact.value) == ("billing_lines", 85.0, "HIGH")
    assert set(load_schemas(path)) == {"billing_lines"}
    rows = [
        {
            "work_request": "WR-1",
            "quantity": 2,
            "work_date": "2025-06-02",
            "foreman": "Chen",
        }
    ]
    assert validate_batch(rows, schema, record=False).score == 100.0
    with pytest.raises(
        SchemaError, match="no schema 'billing_line' \\(did you mean 'billing_lines'"
    ):
        load_schema(path, "billing_line")


def test_bad_schemas_in_a_rules_file_fail_the_file_with_the_fix(tmp_path):
    bad = SCHEMA_FILE.replace('type = "number"', 'type = "nmber"').replace("floor = 85", "flor=1")
    with pytest.raises(RuleError) as caught:
        parse_rules(bad, "rules.toml")
    text = str(caught.value)
    assert "rules.toml: schema 'billing_lines' (#1): unknown key 'flor'" in text
    path = tmp_path / "rules.toml"
    path.write_text(bad.replace("flor=1", "floor=1"))
    with pytest.raises(SchemaError) as caught:
        load_schemas(path)
    assert (
        "schema 'billing_lines' (#1): field 'quantity': unknown type 'nmber' (did you mean "
        "'number'?)" in str(caught.value)
    )
    with pytest.raises(RuleError, match="missing name"):
        parse_rules(SCHEMA_FILE.replace('name = "billing_lines"', ""), "rules.toml")


def test_docs_schema_example_loads(tmp_path):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text()
    examples = [e for e in re.findall(r"```toml\n(.*?)```", doc, re.DOTALL) if "[[schema]]" in e]
    assert examples, "docs/rules.md has no [[schema]] example"
    for number, example in enumerate(examples):
        path = tmp_path / f"example{number}.toml"
        path.write_text(example)
        assert load_schemas(path)


def test_without_a_current_span_the_batch_gets_its_own(spans):
    result = biz.validate_batch([{"amount": "x"}], {"amount": "number"}, name="loose")
    span = _only_span(spans)
    assert span.name == "validate_batch loose"
    assert span.attributes["biz.quality.score"] == result.score == 0.0
    assert _violations(span)[0]["biz.violation.group"] == "loose"


def test_record_false_only_scores(spans):
    with trace.get_tracer("tests").start_as_current_span("quiet"):
        validate_batch([{"amount": "x"}], {"amount": "number"}, record=False)
    span = _only_span(spans)
    assert span.events == () or list(span.events) == []
    assert "biz.quality.score" not in span.attributes
    assert risk_snapshot().violations == 0


def test_measurements_follow_sentrys_convention():
    class Event:
        def __init__(self, name, attributes, timestamp):
            self.name, self.attributes, self.timestamp = name, attributes, timestamp

    class Span:
        def __init__(self, *events):
            self.events = events

    good = {MEASUREMENT_VALUE: 50.0, MEASUREMENT_UNIT: "none"}
    spans = [
        Span(Event("data_quality_score", good, 2), Event("Bad Name", good, 3)),
        Span(
            Event("data_quality_score", {MEASUREMENT_VALUE: 90.0}, 5),
            Event("ratio", {MEASUREMENT_VALUE: math.inf}, 1),
            Event("text", {MEASUREMENT_VALUE: "3"}, 1),
            Event("biz.quality", {"biz.quality.score": 1.0}, 1),
        ),
    ]
    assert measurements(spans) == {"data_quality_score": {"value": 90.0, "unit": "none"}}
    assert measurement_problem("data_quality_score") is None
    assert measurement_problem("Data-Quality") is not None
    assert measurement_problem("x", "per cent") is not None
