"""Property 3: rules files. Whatever a file holds (arbitrary text, bytes, or any TOML
structure), ``load_rules`` loads it or raises the package's RuleError (a ValueError) naming
the file, and ``check_rules_file`` returns its problems as strings; nothing else escapes."""

from __future__ import annotations

import datetime
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

from otel_sentry_biz.config import Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10, as the loader
    import tomli as tomllib
from otel_sentry_biz.rules.engine import RuleError, RuleSet
from otel_sentry_biz.rules.kinds import KINDS
from otel_sentry_biz.rules.loader import SETS_DIRECTORY, check_rules_file, load_rules, parse_rules
from tests.hostile.budget import budget
from tests.hostile.harness import Harness, error_logs
from tests.hostile.strategies import any_text, otel_value

PROPERTY = budget(60)

# -- a TOML writer for generated structures (tomli_w is not a dependency) -----------------


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(value)


def toml_document(document: dict[str, Any]) -> str:
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in document.items())


# -- structures -----------------------------------------------------------------------------

_FIELDS = sorted(
    {field for kind in KINDS.values() for field in kind.__dataclass_fields__} | {"kind"}
)
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
_scalars = st.one_of(
    _text,
    st.sampled_from([*KINDS, "HIGH", "CRITICAL", "sum", "1d", "30s", "error", "{amount}", "{", ""]),
    st.integers(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)
    ),
    max_leaves=10,
)
rule_table = st.dictionaries(
    st.one_of(st.sampled_from(_FIELDS), _text),
    toml_values,
    max_size=10,
)
rules_document = st.fixed_dictionaries(
    {},
    optional={
        "rule": st.one_of(st.lists(rule_table, max_size=4), toml_values),
        "state": st.one_of(
            st.sampled_from(["memory://", "sqlite:////tmp/x.db", "redis://h:1/0", "bogus://"]),
            toml_values,
        ),
        "alert_tiers": st.one_of(st.dictionaries(_text, toml_values, max_size=3), toml_values),
        "schema": st.one_of(
            st.lists(
                st.dictionaries(
                    st.sampled_from(["name", "fields", "floor", "impact"]) | _text,
                    toml_values,
                    max_size=4,
                ),
                max_size=3,
            ),
            toml_values,
        ),
        "rules": toml_values,  # a typo of "rule"
    },
)


@pytest.fixture(scope="module")
def rules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-rules") / "rules.toml"


def _loads_or_names_the_file(path: Path) -> str:
    """ "loaded" or "rejected" (a RuleError whose every problem names the file)."""
    try:
        # A state store named by the file is not opened: state= overrides it.
        loaded = load_rules(path, state="memory://")
    except RuleError as exc:
        event("rejected")
        assert exc.problems, "a RuleError without problems"
        for problem in exc.problems:
            assert isinstance(problem, str)
            assert str(path) in problem, f"{problem!r} does not name the file"
        outcome = "rejected"
    else:
        event("loaded")
        assert isinstance(loaded, RuleSet)
        outcome = "loaded"
    problems = check_rules_file(path)
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    # check_rules_file agrees with load_rules: problems exactly when loading failed.
    assert bool(problems) == (outcome == "rejected"), problems
    return outcome


@PROPERTY
@given(text=st.one_of(any_text, st.builds(lambda d: toml_document(d), rules_document)))
def test_any_text_loads_or_raises_a_rule_error_naming_the_file(rules_path: Path, text: str) -> None:
    rules_path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert _loads_or_names_the_file(rules_path) in ("loaded", "rejected")


@PROPERTY
@given(data=st.binary(max_size=200))
def test_any_bytes_load_or_raise_a_rule_error_naming_the_file(
    rules_path: Path, data: bytes
) -> None:
    rules_path.write_bytes(data)
    assert _loads_or_names_the_file(rules_path) in ("loaded", "rejected")


@PROPERTY
@given(document=rules_document)
def test_any_toml_structure_loads_or_raises_a_rule_error_naming_the_file(
    rules_path: Path, document: dict[str, Any]
) -> None:
    rules_path.write_text(toml_document(document), encoding="utf-8")
    assert _loads_or_names_the_file(rules_path) in ("loaded", "rejected")


@PROPERTY
@given(kind=st.sampled_from(sorted(KINDS)), table=rule_table)
def test_every_kind_with_any_fields_loads_or_raises_a_rule_error(
    rules_path: Path, kind: str, table: dict[str, Any]
) -> None:
    document = {"rule": [{**table, "kind": kind, "name": table.get("name", "r")}]}
    rules_path.write_text(toml_document(document), encoding="utf-8")
    assert _loads_or_names_the_file(rules_path) in ("loaded", "rejected")


def _nested(opener: str, depth: int) -> str:
    closer = "]" if opener == "[" else "}"
    return "x = " + opener * depth + "1" + closer * depth + "\n"


@budget(20)
@given(depth=st.integers(1, 5000), opener=st.sampled_from(["[", "{ a = "]))
def test_nested_toml_raises_a_rule_error(opener: str, depth: int) -> None:
    with pytest.raises(RuleError, match=r"deep\.toml"):
        parse_rules(_nested(opener, depth), "deep.toml")


@pytest.mark.parametrize("entry", ["parse_rules", "check_rules_file", "Settings.load"])
def test_deeply_nested_toml_is_a_rule_error(rules_path: Path, entry: str) -> None:
    rules_path.write_text(_nested("[", 1000), encoding="utf-8")
    calls = {
        "parse_rules": lambda: parse_rules(rules_path.read_text(encoding="utf-8"), "deep.toml"),
        "check_rules_file": lambda: check_rules_file(rules_path),
        "Settings.load": lambda: Settings.load({"OTEL_SENTRY_BIZ_RULES": str(rules_path)}),
    }
    try:
        calls[entry]()
    except ValueError:
        pass  # RuleError / ConfigError
    except Exception as exc:
        raise AssertionError(f"{entry} raised {type(exc).__name__}") from exc


# -- rules that load meet hostile spans -----------------------------------------------------

BILLING = tomllib.loads((SETS_DIRECTORY / "billing.toml").read_text(encoding="utf-8"))["rule"]
_BILLING_KEYS = [
    "amount",
    "quantity",
    "unit_price",
    "work_request",
    "foreman",
    "customer",
    "work_date",
]
_dates = st.one_of(
    st.dates().map(str),
    st.sampled_from(["9999-12-31", "0001-01-01", "2025-02-30", "2025-06-02T25:00", "", "today"]),
)
span_attributes = st.dictionaries(
    st.sampled_from([*_BILLING_KEYS, *("biz." + key for key in _BILLING_KEYS)]),
    st.one_of(otel_value, _dates),
    max_size=8,
)


@budget(40)
@given(
    base=st.sampled_from(BILLING),
    overrides=st.one_of(
        st.just({}), st.dictionaries(st.sampled_from(_FIELDS), toml_values, max_size=2)
    ),
    spans=st.lists(span_attributes, min_size=1, max_size=4),
)
def test_loaded_rules_never_fail_on_hostile_spans(
    harness: Harness,
    rules_path: Path,
    base: dict[str, Any],
    overrides: dict[str, Any],
    spans: list[dict[str, Any]],
) -> None:
    rules_path.write_text(toml_document({"rule": [{**base, **overrides}]}), encoding="utf-8")
    try:
        rules = load_rules(rules_path, state="memory://")
    except RuleError as exc:
        event("rejected")
        assert all(str(rules_path) in problem for problem in exc.problems)
        return
    event("loaded")
    harness.reset()
    tracer = harness.provider_with(Resource.create({}), rules=[rules]).get_tracer("rules")
    with error_logs("otel_sentry_biz.rules", "otel_sentry_biz.processor") as errors:
        with tracer.start_as_current_span("POST /lines", kind=SpanKind.SERVER):
            for attributes in spans:
                with tracer.start_as_current_span("line") as span:
                    for key, value in attributes.items():
                        span.set_attribute(key, value)
    rules.close()
    assert not errors, [record.getMessage() for record in errors]
    harness.events()


@pytest.mark.parametrize(
    "work_date", [-62135596801, 1e20, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_calendar_rules_skip_dates_out_of_range(harness: Harness, work_date: object) -> None:
    rules = load_rules(SETS_DIRECTORY / "billing.toml", state="memory://")
    tracer = harness.provider_with(Resource.create({}), rules=[rules]).get_tracer("rules")
    harness.reset()
    with error_logs("otel_sentry_biz.rules") as errors:
        with tracer.start_as_current_span("POST /lines", kind=SpanKind.SERVER):
            with tracer.start_as_current_span("line") as span:
                span.set_attributes(
                    {"biz.work_date": work_date, "biz.quantity": 1, "biz.work_request": "WR-1"}
                )
    rules.close()
    assert not errors, [record.getMessage() for record in errors]


def test_the_writer_round_trips(rules_path: Path) -> None:
    document = {"rule": [{"kind": "threshold", "name": 'a "q" \\ \x01', "above": 1.5}]}
    rules_path.write_text(toml_document(document), encoding="utf-8")
    assert json.dumps(document) == json.dumps(tomllib.loads(rules_path.read_text(encoding="utf-8")))
