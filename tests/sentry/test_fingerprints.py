"""Fingerprint rules on events built from real spans, checked by Relay's normalizer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_sentry_biz as biz
from otel_sentry_biz.config import ConfigError, Settings
from otel_sentry_biz.scrub import Scrubber, ScrubConfig
from otel_sentry_biz.sentry.events import EventFactory
from otel_sentry_biz.sentry.fingerprints import (
    FingerprintError,
    FingerprintRule,
    FingerprintRules,
    apply_fingerprints,
    fingerprint_rules_for,
    fingerprints_setting,
    load_fingerprint_rules,
    parse_fingerprint_rules,
)
from otel_sentry_biz.sentry.segments import SegmentAssembler
from tests.relay_oracle import assert_valid

DOC = Path(__file__).resolve().parents[2] / "docs" / "fingerprints.md"
DOC_EXAMPLES = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.DOTALL)


class CardDeclined(Exception):
    """Dotted name ``tests.sentry.test_fingerprints.CardDeclined`` in the event."""


@pytest.fixture
def tracer(use_processor):
    """Spans judged by BusinessSpanProcessor, kept in memory (``tracer.exporter``)."""
    exporter = InMemorySpanExporter()
    processor = biz.BusinessSpanProcessor(next=SimpleSpanProcessor(exporter))
    use_processor.target = processor  # biz.operation / capture spans land here too
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    tracer.exporter = exporter
    return tracer


def _built(tracer) -> dict[str, list[dict]]:
    """Events the real EventFactory builds from the finished spans, by kind."""
    factory = EventFactory()
    assembler = SegmentAssembler()
    segments = assembler.add(tracer.exporter.get_finished_spans()) + assembler.drain()
    out = {"transaction": [], "error": [], "violation": [], "message": []}
    for segment in segments:
        out["transaction"] += factory.transactions(segment)
        out["error"] += factory.errors(segment)
        out["violation"] += factory.violations(segment)
        out["message"] += factory.messages(segment)
    return out


def _fail(tracer, operation="checkout", exc=None, **context):
    """A request whose business operation fails with ``exc`` (default: CardDeclined)."""
    with tracer.start_as_current_span("POST /api/checkout", kind=SpanKind.SERVER):
        with biz.context(**context):
            try:
                with biz.operation(operation):
                    raise exc or CardDeclined("card declined")
            except Exception:
                pass


def _applied(rules: FingerprintRules, event: dict) -> dict:
    """``event`` after the rules, as Relay normalizes it (failing on any complaint)."""
    apply_fingerprints([event], rules)
    return assert_valid(event)


# -- matching on events built from real spans ---------------------------------------------


def test_error_grouped_by_operation_and_user_type_from_a_toml_file(tracer, tmp_path):
    path = tmp_path / "fingerprints.toml"
    path.write_text(
        '[[fingerprint]]\nkind = "error"\noperation = "check*"\n'
        'fingerprint = ["{{ default }}", "{operation}", "{user_type}"]\n'
    )
    _fail(tracer, user_type="admin")
    (error,) = _built(tracer)["error"]
    normalized = _applied(load_fingerprint_rules(path), error)
    assert normalized["fingerprint"] == ["{{ default }}", "checkout", "admin"]


def test_python_rules_give_the_same_fingerprint_as_toml(tracer):
    from_toml = parse_fingerprint_rules(
        '[[fingerprint]]\nuser_type = ["admin", "staff"]\nfingerprint = ["staff", "{error_type}"]'
    )
    in_python = FingerprintRules([FingerprintRule(["staff", "{error_type}"], user_type="staff")])
    _fail(tracer, user_type="staff")
    (error,) = _built(tracer)["error"]
    copy = {**error}
    assert _applied(from_toml, error)["fingerprint"] == ["staff", "CardDeclined"]
    assert _applied(in_python, copy)["fingerprint"] == ["staff", "CardDeclined"]


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("CardDeclined", True),
        ("Card*", True),
        ("tests.sentry.test_fingerprints.CardDeclined", True),
        ("tests.sentry.*", True),
        ("*.CardDeclined", True),
        ("cardDeclined", False),  # case-sensitive, as Sentry's rules
        ("stripe.*", False),
        ("Declined", False),  # a whole name, not a substring
    ],
)
def test_error_type_matches_short_or_dotted_name(tracer, pattern, matches):
    rules = FingerprintRules([FingerprintRule(["declines"], error_type=pattern)])
    _fail(tracer)
    (error,) = _built(tracer)["error"]
    assert (_applied(rules, error).get("fingerprint") == ["declines"]) is matches


def test_error_type_matches_a_cause_in_the_chain_and_renders_the_raised_type(tracer):
    rules = FingerprintRules([FingerprintRule(["gateway", "{error_type}"], error_type="Card*")])
    try:
        raise CardDeclined("card declined")
    except CardDeclined as cause:
        wrapped = RuntimeError("payment failed")
        wrapped.__cause__ = cause
    _fail(tracer, exc=wrapped)
    (error,) = _built(tracer)["error"]
    assert [v["type"] for v in error["exception"]["values"]] == ["CardDeclined", "RuntimeError"]
    assert _applied(rules, error)["fingerprint"] == ["gateway", "RuntimeError"]


def test_operation_falls_back_to_the_transaction_name(tracer):
    rules = FingerprintRules([FingerprintRule(["api", "{operation}"], operation="POST /api/*")])
    with tracer.start_as_current_span("POST /api/orders", kind=SpanKind.SERVER):
        biz.capture_error(ValueError("bad total"))
    (error,) = _built(tracer)["error"]
    assert _applied(rules, error)["fingerprint"] == ["api", "POST /api/orders"]


def test_operation_matches_the_business_operation_or_the_transaction(tracer):
    by_transaction = FingerprintRules([FingerprintRule(["x"], operation="POST /api/checkout")])
    _fail(tracer, operation="pay")
    (error,) = _built(tracer)["error"]
    assert error["tags"]["operation"] == "pay"
    assert _applied(by_transaction, error)["fingerprint"] == ["x"]


def test_kind_selects_errors_violations_or_messages(tracer):
    rules = parse_fingerprint_rules(
        '[[fingerprint]]\nkind = "violation"\nfingerprint = ["{{ default }}", "{user_type}"]\n'
        '[[fingerprint]]\nkind = "message"\nfingerprint = ["note", "{tag:plan}"]\n'
    )
    with tracer.start_as_current_span("close_month"):
        with biz.context(user_type="customer", plan="free"):
            biz.violation("credit_limit", "HIGH", "ACME over limit", group="ACME", amount=9.5)
            biz.capture_message("import finished with 3 skipped rows", "warning")
            biz.capture_error(KeyError("sku"))
    built = _built(tracer)
    (violation,), (message,), (error,) = built["violation"], built["message"], built["error"]
    # {{ default }} stands for the violation's own fingerprint: rule and group key.
    expected = ["biz-violation", "credit_limit", "ACME", "customer"]
    assert _applied(rules, violation)["fingerprint"] == expected
    assert _applied(rules, message)["fingerprint"] == ["note", "free"]
    assert "fingerprint" not in _applied(rules, error)  # no rule for errors: Sentry groups
    for transaction in built["transaction"]:
        rules.apply(transaction)
        assert "fingerprint" not in transaction


def test_first_matching_rule_wins(tracer):
    rules = FingerprintRules(
        [
            FingerprintRule(["admins"], user_type="admin"),
            FingerprintRule(["declines"], error_type="CardDeclined"),
            FingerprintRule(["everything else"]),
        ]
    )
    _fail(tracer, user_type="admin")
    _fail(tracer, user_type="customer")
    _fail(tracer, user_type="customer", exc=KeyError("sku"))
    errors = _built(tracer)["error"]
    assert [_applied(rules, e)["fingerprint"] for e in errors] == [
        ["admins"],
        ["declines"],
        ["everything else"],
    ]
    assert rules.rule_for(errors[0]) is rules.rules[0]


def test_tags_match_business_values_and_bridge_tags(tracer):
    rules = parse_fingerprint_rules(
        "[[fingerprint]]\n"
        'tags = { integration_type = "google_*", business_impact = ["HIGH", "CRITICAL"] }\n'
        'fingerprint = ["integration", "{tag:integration_type}", "{tag:biz.integration_type}"]\n'
    )
    with tracer.start_as_current_span("sync"):
        with biz.context(integration_type="google_calendar"):
            biz.capture_error(TimeoutError("calendar"), impact="HIGH")
            biz.capture_error(TimeoutError("calendar"), impact="LOW")
    high, low = _built(tracer)["error"]
    expected = ["integration", "google_calendar", "google_calendar"]
    assert _applied(rules, high)["fingerprint"] == expected
    assert "fingerprint" not in _applied(rules, low)


def test_a_business_value_not_tagged_is_read_from_the_span_data(tracer, use_processor):
    from otel_sentry_biz.sentry.tags import TagMapper, TagPolicy

    rules = FingerprintRules([FingerprintRule(["per user type", "{user_type}"], user_type="*")])
    _fail(tracer, user_type="admin")
    (segment,) = SegmentAssembler().add(tracer.exporter.get_finished_spans())
    # Denied as a tag (e.g. OTEL_SENTRY_BIZ_TAGS_DENY): still in the failing span's data.
    factory = EventFactory(tags=TagMapper(TagPolicy(deny=frozenset({"user_type"}))))
    (error,) = factory.errors(segment)
    assert "user_type" not in error["tags"]
    assert _applied(rules, error)["fingerprint"] == ["per user type", "admin"]


def test_violation_data_and_reserved_tag_names_are_read_too(tracer):
    rules = FingerprintRules([FingerprintRule(["{tag:user}", "{tag:amount}"], kind="violation")])
    with tracer.start_as_current_span("close_month"):
        with biz.context(user="vip"):  # "user" is Relay's: tagged as biz.user
            biz.violation("credit_limit", "HIGH", "over limit", amount=9.5)  # a float: no tag
    (violation,) = _built(tracer)["violation"]
    assert violation["tags"]["biz.user"] == "vip" and "amount" not in violation["tags"]
    assert _applied(rules, violation)["fingerprint"] == ["vip", "9.5"]


def test_user_type_key_names_the_business_key(tracer):
    rules = parse_fingerprint_rules(
        'user_type_key = "user_role"\n'
        '[[fingerprint]]\nuser_type = "barber"\nfingerprint = ["{{ default }}", "{user_type}"]\n'
    )
    _fail(tracer, user_role="barber", user_type="ignored")
    (error,) = _built(tracer)["error"]
    assert _applied(rules, error)["fingerprint"] == ["{{ default }}", "barber"]


def test_a_missing_value_renders_as_a_placeholder(tracer):
    rules = FingerprintRules(
        [FingerprintRule(["{operation}", "{user_type}", "plan-{tag:plan}"], kind="error")]
    )
    with tracer.start_as_current_span("nightly"):
        biz.capture_error(ValueError("x"))
    (error,) = _built(tracer)["error"]
    normalized = _applied(rules, error)
    assert normalized["fingerprint"] == ["nightly", "<user_type?>", "plan-<tag:plan?>"]


def test_fingerprint_survives_scrubbing_and_normalisation(tracer):
    rules = FingerprintRules([FingerprintRule(["{{default}}", "{tag:customer}", "{user_type}"])])
    _fail(tracer, customer="ACME", user_type="customer")
    (error,) = _built(tracer)["error"]
    apply_fingerprints([error], rules)
    scrubbed = Scrubber(ScrubConfig()).scrub_event(error)  # what the exporter does next
    assert assert_valid(scrubbed)["fingerprint"] == ["{{ default }}", "ACME", "customer"]


def test_an_event_without_a_match_is_left_alone(tracer):
    rules = FingerprintRules([FingerprintRule(["x"], operation="refund*")])
    _fail(tracer)
    (error,) = _built(tracer)["error"]
    before = dict(error)
    apply_fingerprints([error], rules)
    apply_fingerprints([error], None)
    assert error == before


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"exception": {"values": [None, 3]}, "tags": [["user_type", "admin"]]},
        {"message": "hi", "contexts": {"span": "x"}},
        {"message": "hi", "tags": {"user_type": object()}, "fingerprint": "oops"},
    ],
)
def test_apply_never_raises_and_gives_strings_only(event):
    rules = FingerprintRules([FingerprintRule(["{user_type}", "{error_type}", "{{ default }}"])])
    rules.apply(event)
    if "fingerprint" in event:
        assert event["fingerprint"] == ["<user_type?>", "<error_type?>", "{{ default }}"]


def test_an_event_it_cannot_read_keeps_its_grouping_and_is_logged(caplog):
    rules = FingerprintRules([FingerprintRule(["a"])])
    event = {"exception": "not a mapping", "message": "hi"}
    rules.apply(event)
    assert event == {"exception": "not a mapping", "message": "hi"}
    assert "could not apply fingerprint rules" in caplog.text


# -- validation ---------------------------------------------------------------------------


#: A valid rule, to which a case adds the field under test.
RULE = '[[fingerprint]]\nfingerprint = ["a"]\n'
#: A rule whose fingerprint is under test.
PARTS = "[[fingerprint]]\nfingerprint = {}\n"
BAD_FILES = [
    ("[[fingerprint]\n", "f.toml: not valid TOML"),
    ("", "f.toml: no rules: add a [[fingerprint]] table"),
    ("fingerprint = 3", "'fingerprint' must be tables"),
    ("fingerprints = []\n" + RULE, "unknown top-level key 'fingerprints' (did you mean"),
    ('user_type_key = ""\n' + RULE, "user_type_key must name a business key"),
    (RULE + 'name = "p"\neror_type = "X"', "'p' (#1): unknown key 'eror_type' (did you mean"),
    (RULE + 'tag = { plan = "x" }', "unknown key 'tag' (did you mean 'tags'?)"),
    ('[[fingerprint]]\nkind = "error"', "(#1): missing fingerprint"),
    (PARTS.format("[]"), "(#1): the fingerprint is empty"),
    (PARTS.format('"a"'), 'must be a list of templates, e.g. ["a"]'),
    (PARTS.format('["a", 3]'), "must hold strings only"),
    (PARTS.format('["  "]'), "an empty fingerprint part"),
    (PARTS.format('["{operaton}"]'), "unknown placeholder {operaton} (did you mean 'operation'?)"),
    (PARTS.format('["{tag:}"]'), "{tag:} names no key"),
    (PARTS.format('["a}"]'), "an unpaired brace"),
    (PARTS.format('["x-{{ default }}"]'), "{{ default }} must be a part of its own"),
    (PARTS.format('["{{ transaction }}"]'), "{{ transaction }} is not a fingerprint value"),
    (RULE + 'error_type = "[Card"', "'[' opens a character set that is never closed"),
    (RULE + 'operation = ["checkout", ""]', "operation has an empty pattern"),
    (RULE + 'tags = { plan = "" }', "tags.plan has an empty pattern"),
    (RULE + "tags = { plan = 3 }", "tags must be a table of patterns"),
    (RULE + 'error_type = "Card Error"', "exception type names have no spaces"),
    (RULE + 'kind = "erorr"', "unknown kind 'erorr' (did you mean 'error'?)"),
    (RULE + 'kind = "message"\nerror_type = "X"', 'add "error" to kind'),
    (RULE + 'kind = "error"\nname = "a"\n' + RULE + 'name = "a"', "the name is also rule #1's"),
    (RULE + RULE + 'kind = "error"', "(#2): never applies, rule #1 matches every event"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_a_bad_file_is_refused_naming_the_file_the_rule_and_the_fix(text, expected):
    with pytest.raises(FingerprintError) as caught:
        parse_fingerprint_rules(text, "f.toml")
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert all(problem.startswith("f.toml: ") for problem in caught.value.problems)
    assert isinstance(caught.value, ConfigError)  # stops start-up like every setting


def test_every_problem_of_a_file_is_listed_at_once():
    text = (
        '[[fingerprint]]\nname = "payments"\nfingerprint = ["a"]\neror_type = "X"\n'
        "[[fingerprint]]\nfingerprint = []\n"
        '[[fingerprint]]\nfingerprint = ["a"]\nerror_type = "[Card"\n'
        '[[fingerprint]]\nfingerprint = ["x-{{ default }}"]\n'
        '[[fingerprint]]\nfingerprint = ["{{ default }}"]\n'
        '[[fingerprint]]\nname = "all"\nkind = "error"\nfingerprint = ["b"]\n'
    )
    with pytest.raises(FingerprintError) as caught:
        parse_fingerprint_rules(text, "fingerprints.toml")
    # docs/fingerprints.md shows exactly these lines.
    shown = re.search(r"No rule is half-loaded:\n\n```\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert caught.value.problems == shown.group(1).splitlines()


def test_python_rules_are_checked_when_built():
    with pytest.raises(FingerprintError, match="unknown kind 'errors'"):
        FingerprintRule(["a"], kind="errors")
    with pytest.raises(FingerprintError, match="never applies"):
        FingerprintRules([FingerprintRule(["a"]), FingerprintRule(["b"], kind="error")])
    with pytest.raises(FingerprintError, match="pass FingerprintRule values"):
        FingerprintRules([{"fingerprint": ["a"]}])


def test_a_rule_keeps_its_own_copy_of_what_it_was_given():
    parts, tags = ["a", "{tag:plan}"], {"plan": ["free"]}
    rule = FingerprintRule(parts, tags=tags)
    parts.append("b")
    tags["plan"].append("pro")
    assert rule.fingerprint == ("a", "{tag:plan}")
    assert rule.tags == {"plan": ("free",)}


def test_the_setting_names_a_file_checked_at_start_up(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[[fingerprint]]\nfingerprint = ["{{ default }}", "{operation}"]\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fingerprint]]\nfingerprint = ["{nope}"]\n')
    assert fingerprints_setting(f" {good} ") == str(good)
    assert fingerprints_setting("  ") is None
    with pytest.raises(ValueError, match=re.escape(f"{bad}: fingerprint (#1): '{{nope}}'")):
        fingerprints_setting(str(bad))
    with pytest.raises(ValueError, match="no such file: check the path"):
        fingerprints_setting(str(tmp_path / "missing.toml"))
    assert [r.fingerprint for r in fingerprint_rules_for(good).rules] == [
        ("{{ default }}", "{operation}")
    ]
    rules = FingerprintRules([FingerprintRule(["a"])])
    assert fingerprint_rules_for(rules) is rules
    assert fingerprint_rules_for(None) is None
    assert fingerprint_rules_for("") is None


@pytest.mark.parametrize(
    "example", DOC_EXAMPLES, ids=[f"doc-{n}" for n in range(len(DOC_EXAMPLES))]
)
def test_every_toml_example_in_the_docs_loads(example):
    assert parse_fingerprint_rules(example, "docs/fingerprints.md").rules


def test_the_docs_design_spot_rules_group_as_the_hook_did(tracer):
    design_spot = parse_fingerprint_rules(
        next(e for e in DOC_EXAMPLES if 'name = "validation"' in e)
    )

    class ValidationError(Exception):
        pass

    _fail(tracer, operation="user_registration", exc=ValidationError("email"), user_type="admin")
    _fail(tracer, operation="post_creation", user_type="customer")
    validation, other = _built(tracer)["error"]
    assert _applied(design_spot, validation)["fingerprint"] == [
        "validation",
        "user_registration",
        "admin",
    ]
    assert _applied(design_spot, other)["fingerprint"] == [
        "{{ default }}",
        "post_creation",
        "customer",
    ]


# -- through the exporter (OTEL_SENTRY_BIZ_FINGERPRINTS) ----------------------------------

wired = pytest.mark.skipif(
    "fingerprints" not in Settings.__dataclass_fields__,
    reason="OTEL_SENTRY_BIZ_FINGERPRINTS is not wired into Settings and the exporter yet",
)


@wired
def test_a_bad_fingerprints_file_stops_start_up_naming_the_variable(tmp_path):
    bad = tmp_path / "fingerprints.toml"
    bad.write_text('[[fingerprint]]\nname = "pay"\nfingerprint = ["{user}"]\n')
    with pytest.raises(ConfigError) as caught:
        Settings.load({"OTEL_SENTRY_BIZ_FINGERPRINTS": str(bad)})
    message = str(caught.value)
    assert message.startswith("OTEL_SENTRY_BIZ_FINGERPRINTS=")
    assert f"{bad}: fingerprint 'pay' (#1): '{{user}}': unknown placeholder" in message


@wired
def test_exporter_sends_events_grouped_and_capped_by_the_rules(tmp_path):
    from otel_sentry_biz.receiver import LocalReceiver
    from otel_sentry_biz.sentry.exporter import SentrySpanExporter
    from otel_sentry_biz.span_buffer import BufferedSpanProcessor

    path = tmp_path / "fingerprints.toml"
    path.write_text(
        '[[fingerprint]]\nkind = "error"\nfingerprint = ["{{ default }}", "{user_type}"]'
    )
    with LocalReceiver() as receiver:
        provider = TracerProvider()
        exporter = SentrySpanExporter(
            dsn=receiver.dsn, fingerprints=str(path), max_events_per_issue=1
        )
        provider.add_span_processor(biz.BusinessSpanProcessor(BufferedSpanProcessor(exporter)))
        tracer = provider.get_tracer("tests")
        # Two different errors of one user type: two issues by Sentry's grouping, so the
        # per-issue cap of 1 must let both through; the repeat of the first one is capped.
        for exc in (CardDeclined("declined"), KeyError("sku"), CardDeclined("declined")):
            with tracer.start_as_current_span("checkout"), biz.context(user_type="admin"):
                biz.capture_error(exc)
        assert provider.force_flush(10_000)
        assert receiver.wait_for(lambda r: len(r.events()) >= 4, timeout=10)
        provider.shutdown()
        errors = [e for e in receiver.events() if e.get("exception")]
    assert [assert_valid(e)["fingerprint"] for e in errors] == [["{{ default }}", "admin"]] * 2
    assert {e["exception"]["values"][-1]["type"] for e in errors} == {"CardDeclined", "KeyError"}
