"""The rules seam: what a business rule is and what it reports.

A rule looks at one finished span and returns the violations it finds. The processor runs
every rule on every span it judges and records each violation on the span it hands on, so the
Sentry bridge (or any other exporter) reports it. Rule kinds, rule files and shared state for
windows plug in here without changing the processor.

Rules as data (see ``docs/rules.md``)::

    >>> from otel_sentry_biz.rules import load_rules
    >>> BusinessSpanProcessor(rules=[load_rules("rules.toml")], next=...)

or the same through the Python API::

    >>> from otel_sentry_biz.rules import RuleSet, Threshold
    >>> RuleSet([Threshold(name="wr_limit", attribute="amount", above=15_000, impact="HIGH")])

Batches get a data quality score with ``validate_batch(rows, Schema({...}))``, and every
violation adds to the process's per-window risk score, read with ``risk_snapshot()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable

from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.impact import Category, Impact

#: Attribute of a ``biz.violation`` event: the Sentry fingerprint parts a rule asked for.
VIOLATION_FINGERPRINT = "biz.violation.fingerprint"


@dataclass(frozen=True)
class Violation:
    """One broken business rule, as reported on the span and to Sentry."""

    rule: str
    impact: Impact
    message: str
    category: Category = Category.BUSINESS_LOGIC
    group: Optional[str] = None
    risk: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)
    #: Sentry fingerprint parts; empty: the bridge's default (rule, group).
    fingerprint: tuple[str, ...] = ()

    def event_attributes(self) -> dict[str, Any]:
        """The attributes of the ``biz.violation`` span event that carries this violation."""
        out: dict[str, Any] = {
            attr.VIOLATION_RULE: self.rule,
            attr.VIOLATION_IMPACT: Impact.parse(self.impact).value,
            attr.VIOLATION_CATEGORY: Category.parse(self.category).value,
            attr.VIOLATION_MESSAGE: self.message,
        }
        if self.group is not None:
            out[attr.VIOLATION_GROUP] = self.group
        if self.risk:
            out[attr.VIOLATION_RISK] = float(self.risk)
        if self.fingerprint:
            out[VIOLATION_FINGERPRINT] = tuple(str(part) for part in self.fingerprint)
        for key, value in self.data.items():
            coerced = attr.coerce_value(value)
            if coerced is not None:
                out[attr.VIOLATION_DATA_PREFIX + key] = coerced
        return out


@runtime_checkable
class Rule(Protocol):
    """A business rule: ``evaluate`` a finished span, return what it violates.

    Called on the thread that ends the span, so it must be cheap and must not block on I/O;
    the processor catches and logs anything it raises.
    """

    name: str

    def evaluate(self, span: ReadableSpan) -> Iterable[Violation]: ...


#: Public names served lazily from their modules: importing this package (which the processor
#: does) stays cheap and free of import cycles.
_LAZY = {
    "RuleSet": "otel_sentry_biz.rules.engine",
    "RuleError": "otel_sentry_biz.rules.engine",
    "RuleSpec": "otel_sentry_biz.rules.spec",
    "load_rules": "otel_sentry_biz.rules.loader",
    "check_rules_file": "otel_sentry_biz.rules.loader",
    "parse_rules": "otel_sentry_biz.rules.loader",
    "rules_from_setting": "otel_sentry_biz.rules.loader",
    "validate_rules_setting": "otel_sentry_biz.rules.loader",
    "check_command": "otel_sentry_biz.rules.command",
    "open_store": "otel_sentry_biz.rules.state",
    "StateStore": "otel_sentry_biz.rules.state",
    "KINDS": "otel_sentry_biz.rules.kinds",
    "Aggregate": "otel_sentry_biz.rules.kinds",
    "Calendar": "otel_sentry_biz.rules.kinds",
    "Consistency": "otel_sentry_biz.rules.kinds",
    "Duplicate": "otel_sentry_biz.rules.kinds",
    "FailureBudget": "otel_sentry_biz.rules.kinds",
    "Imbalance": "otel_sentry_biz.rules.kinds",
    "Rate": "otel_sentry_biz.rules.kinds",
    "Resource": "otel_sentry_biz.rules.kinds",
    "RoundNumbers": "otel_sentry_biz.rules.kinds",
    "SlowOperation": "otel_sentry_biz.rules.kinds",
    "Threshold": "otel_sentry_biz.rules.kinds",
    "validate_batch": "otel_sentry_biz.rules.quality",
    "Schema": "otel_sentry_biz.rules.quality",
    "FieldSpec": "otel_sentry_biz.rules.quality",
    "SchemaError": "otel_sentry_biz.rules.quality",
    "QualityResult": "otel_sentry_biz.rules.quality",
    "Problem": "otel_sentry_biz.rules.quality",
    "load_schema": "otel_sentry_biz.rules.quality",
    "load_schemas": "otel_sentry_biz.rules.quality",
    "WindowRisk": "otel_sentry_biz.rules.risk",
    "RiskSnapshot": "otel_sentry_biz.rules.risk",
    "risk_snapshot": "otel_sentry_biz.rules.risk",
    "process_risk": "otel_sentry_biz.rules.risk",
    "configure_window_risk": "otel_sentry_biz.rules.risk",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_sentry_biz.rules' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["VIOLATION_FINGERPRINT", "Rule", "Violation", *_LAZY]
