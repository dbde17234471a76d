"""Rules files: TOML in, the same rules as the Python API, or every problem with its fix."""

from __future__ import annotations

import textwrap

import pytest

from otel_sentry_biz import BusinessSpanProcessor, ConfigError
from otel_sentry_biz.rules import (
    Aggregate,
    Rule,
    RuleError,
    Threshold,
    check_rules_file,
    load_rules,
    parse_rules,
    rules_from_setting,
)

GOOD = """
state = "memory://"

[alert_tiers]
MEDIUM = "within_1h"

[[rule]]
name = "work_request_limit"
kind = "threshold"
span = "process_work_request"
attribute = "amount"
above = 15000
impact = "HIGH"
group_by = ["work_request"]
fingerprint = ["wr-limit", "{work_request}"]

[[rule]]
name = "daily_total"
kind = "aggregate"
function = "sum"
attribute = "amount"
window = "1d"
above = 50000
group_by = "customer"
impact = "CRITICAL"
"""


def write(tmp_path, text, name="rules.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path, text):
    return check_rules_file(write(tmp_path, text))


def test_a_rules_file_declares_the_same_rules_as_the_python_api(tmp_path):
    declared = parse_rules(GOOD, "rules.toml")
    assert declared.rules == (
        Threshold(
            name="work_request_limit",
            span="process_work_request",
            attribute="amount",
            above=15000,
            impact="HIGH",
            group_by=["work_request"],
            fingerprint=["wr-limit", "{work_request}"],
        ),
        Aggregate(
            name="daily_total",
            function="sum",
            attribute="amount",
            window="1d",
            above=50000,
            group_by="customer",
            impact="CRITICAL",
        ),
    )
    assert declared.state == "memory://"
    assert declared.alert_tiers == {"MEDIUM": "within_1h"}
    assert check_rules_file(write(tmp_path, GOOD)) == []


def test_loaded_rules_plug_into_the_processor(tmp_path, judge):
    rules = load_rules(write(tmp_path, GOOD))
    assert isinstance(rules, Rule)
    BusinessSpanProcessor(rules=[rules])  # accepted as a rule
    judge.use(*rules.specs, alert_tiers={"MEDIUM": "within_1h"})
    (found,) = judge.span("process_work_request", work_request="WR-1", amount=16_000)
    assert found["biz.violation.fingerprint"] == ("wr-limit", "WR-1")


def test_an_unknown_kind_names_the_file_the_rule_and_the_choices(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        [[rule]]
        name = "big"
        kind = "treshold"
        attribute = "amount"
    """,
    )
    assert str(tmp_path / "rules.toml") in problem
    assert "rule 'big' (#1, treshold)" in problem
    assert "unknown kind 'treshold' (did you mean 'threshold'?)" in problem
    assert "use one of threshold, aggregate," in problem


def test_a_missing_kind_or_field_says_what_to_write(tmp_path):
    problems = problems_of(
        tmp_path,
        """
        [[rule]]
        name = "no_kind"

        [[rule]]
        name = "no_attribute"
        kind = "threshold"
        above = 1

        [[rule]]
        kind = "duplicate"
        key = ["work_request"]
    """,
    )
    assert problems[0].endswith(
        "rule 'no_kind' (#1, no kind): missing field 'kind': use one "
        "of threshold, aggregate, consistency, duplicate, calendar, "
        "round_numbers, imbalance, duration, resource, rate, "
        "failure_budget"
    )
    assert (
        "rule 'no_attribute' (#2, threshold): missing field 'attribute': name the attribute"
        in problems[1]
    )
    assert any(
        "rule (#3, duplicate): missing field 'name': give the rule" in p for p in problems[2:]
    )
    assert any(
        "missing field 'window': set the window, e.g. window = \"1d\"" in p for p in problems
    )


def test_a_bad_window_or_threshold_is_explained(tmp_path):
    problems = problems_of(
        tmp_path,
        """
        [[rule]]
        name = "daily"
        kind = "aggregate"
        function = "total"
        attribute = "amount"
        window = "1 day"
        above = 100
        below = 500

        [[rule]]
        name = "price"
        kind = "threshold"
        attribute = "unit_price"
        above = "lots"
    """,
    )
    text = "\n".join(problems)
    assert (
        "rule 'daily' (#1, aggregate): unknown function 'total': use one of count, sum, avg" in text
    )
    assert "window: bad duration '1 day': use seconds (90) or a number with a unit" in text
    assert "the lower limit 500 is not under the upper limit 100" in text
    assert "rule 'price' (#2, threshold): above must be a number, not 'lots'" in text


def test_unknown_fields_and_values_suggest_the_right_one(tmp_path):
    problems = problems_of(
        tmp_path,
        """
        [[rule]]
        name = "x"
        kind = "threshold"
        atribute = "amount"

        [[rule]]
        name = "y"
        kind = "calendar"
        check = "weekends"
        attribute = "work_date"
        timezone = "Mars/Olympus"
        impact = "SEVERE"
        message = "{amount"
    """,
    )
    text = "\n".join(problems)
    assert "unknown field 'atribute' (did you mean 'attribute'?): a threshold rule has" in text
    assert "unknown check 'weekends': use one of future, weekend, after_hours" in text
    assert "unknown time zone 'Mars/Olympus': use an IANA name such as Europe/Berlin" in text
    assert "unknown impact 'SEVERE': use one of CRITICAL, HIGH, MEDIUM, LOW" in text
    assert "'{amount' is not a valid template" in text


def test_every_problem_is_reported_at_once_and_nothing_loads(tmp_path):
    path = write(
        tmp_path,
        """
        [[rule]]
        name = "a"
        kind = "rate"
        per = "soon"

        [[rule]]
        name = "a"
        kind = "imbalance"
        factor = 5
    """,
    )
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    assert isinstance(caught.value, ConfigError)  # the CLI and configure() report it as such
    text = str(caught.value)
    assert "per: bad duration 'soon'" in text
    assert "imbalance needs group_by" in text
    assert "min_groups (4) must be more than factor (5)" in text
    assert "the name is already used by rule #1" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[rule]\nname=1", "not valid TOML"),
        ("", "no rules: add a [[rule]] table per rule"),
        ("[[rules]]\nname='x'", "unknown top-level key 'rules' (did you mean 'rule'?)"),
        (
            "state = 'postgres://x'\n[[rule]]\nname='d'\nkind='duration'",
            "state: unknown state store URL",
        ),
        (
            "[alert_tiers]\nHUGE = 'now'\n[[rule]]\nname='d'\nkind='duration'",
            "alert_tiers: unknown impact 'HUGE'",
        ),
    ],
)
def test_file_level_problems(tmp_path, text, expected):
    (problem,) = problems_of(tmp_path, text)
    assert expected in problem


def test_a_missing_file_names_the_path(tmp_path):
    (problem,) = check_rules_file(tmp_path / "nope.toml")
    assert problem == f"{tmp_path / 'nope.toml'}: no such file: check the path"


def test_the_python_api_validates_the_same_way():
    with pytest.raises(RuleError, match="rule 'x' \\(#1, threshold\\): no limit given"):
        from otel_sentry_biz.rules import RuleSet

        RuleSet([Threshold(name="x", attribute="amount")])


def test_a_setting_combines_files_and_rejects_clashing_names(tmp_path):
    first = write(tmp_path, GOOD, "a.toml")
    second = write(tmp_path, "[[rule]]\nname = 'slow'\nkind = 'duration'\n", "b.toml")
    rules = rules_from_setting(f"{first}, {second}")
    assert [spec.name for spec in rules.specs] == ["work_request_limit", "daily_total", "slow"]
    assert rules_from_setting(" ") is None
    with pytest.raises(RuleError, match="the name is already used by rule #1"):
        rules_from_setting(f"{first},{first}")
    with pytest.raises(RuleError, match="neither a rules file"):
        rules_from_setting("no-such-set")


def test_rules_check_command_prints_problems_or_ok(tmp_path):
    import io

    from otel_sentry_biz.rules.command import check_command

    good, bad = (
        write(tmp_path, GOOD, "good.toml"),
        write(tmp_path, "[[rule]]\nname='x'", "bad.toml"),
    )
    out = io.StringIO()
    assert check_command([str(good), "billing"], out) == 0
    assert out.getvalue().splitlines()[0] == f"{good}: ok, 2 rules"
    assert out.getvalue().splitlines()[1].endswith("billing.toml: ok, 12 rules")
    out = io.StringIO()
    assert check_command([str(bad), "nope"], out) == 1
    assert "missing field 'kind'" in out.getvalue()
    assert "'nope' is neither a rules file" in out.getvalue()


def test_the_rules_setting_is_validated_up_front(tmp_path):
    from otel_sentry_biz.rules.loader import validate_rules_setting

    good = write(tmp_path, GOOD, "good.toml")
    assert validate_rules_setting(f" {good} ") == f"{good}"
    assert validate_rules_setting(" billing ") == "billing"
    assert validate_rules_setting("") is None
    # Each file is sound, together they are not: GOOD and billing both name work_request_limit.
    with pytest.raises(ValueError, match="already used"):
        validate_rules_setting(f"{good}, billing")
    with pytest.raises(ValueError, match="no such file"):
        validate_rules_setting(f"{good},{tmp_path / 'missing.toml'}")
