"""RuleSet: validated rule specs compiled into one indexed, never-raising :class:`Rule`.

>>> rules = RuleSet([Threshold(name="wr_limit", attribute="amount", above=15_000)])
>>> provider.add_span_processor(BusinessSpanProcessor(rules=[rules], next=...))

The processor calls ``evaluate(span)`` on the thread that ends each span. A RuleSet looks only
at the rules that may apply (see :mod:`otel_sentry_biz.rules.index`), runs each in isolation
(a failing rule or an unavailable state store is logged or counted, never raised), and turns
what the checks find into :class:`Violation` values with message, group key, fingerprint,
risk delta, alert tier, and the running risk scores of the trace and of the process's current
window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional, Union

from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.impact import Category, Impact
from otel_sentry_biz.rules import Violation, alerting
from otel_sentry_biz.rules.index import RuleIndex, Selector
from otel_sentry_biz.rules.message import Values, render
from otel_sentry_biz.rules.risk import RiskSnapshot, WindowRisk, process_risk
from otel_sentry_biz.rules.span_view import SPAN_PREFIX, SpanView, bare, display_key
from otel_sentry_biz.rules.spec import BuildContext, Check, Finding, RuleSpec, as_tuple
from otel_sentry_biz.rules.state import DEFAULT_STATE_URL, StateStore, StoreUnavailable, open_store

_logger = logging.getLogger("otel_sentry_biz.rules")

#: Violation data values must be OTel attribute values.
_SCALARS = (str, bool, int, float)


class RuleError(ConfigError):
    """Rules are invalid. ``problems`` lists each one with the rule it concerns and the fix."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid rules:\n  " + "\n  ".join(self.problems))


def rule_label(source: Optional[str], number: int, name: Any, kind: Any) -> str:
    """How a message points at a rule: ``rules.toml: rule 'daily_total' (#2, aggregate)``."""
    where = f"{source}: " if source else ""
    named = f"rule {name!r} " if isinstance(name, str) else "rule "
    return f"{where}{named}(#{number}, {kind})"


def rule_problems(
    specs: Iterable[Union[Any, tuple[int, Any]]], source: Optional[str] = None
) -> list[str]:
    """Every problem of ``specs`` (or of ``(number, spec)`` pairs), each saying which rule."""
    found: list[str] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(specs, start=1):
        number, spec = item if isinstance(item, tuple) else (position, item)
        if not isinstance(spec, RuleSpec):
            found.append(
                f"{rule_label(source, number, None, type(spec).__name__)}: {spec!r} is not a "
                "rule spec: use one of the kinds, e.g. Threshold(name=..., attribute=..., "
                "above=...)"
            )
            continue
        label = rule_label(source, number, spec.name, spec.kind)
        found.extend(f"{label}: {problem}" for problem in spec.problems())
        if isinstance(spec.name, str):
            if spec.name in seen:
                found.append(
                    f"{label}: the name is already used by rule #{seen[spec.name]}: names must "
                    "be unique (they key the state and the Sentry issue)"
                )
            seen.setdefault(spec.name, number)
    return found


class RuleSet:
    """Rules compiled for evaluation; itself a :class:`~otel_sentry_biz.rules.Rule`.

    ``state`` is a store URL (``memory://``, ``sqlite:///...``, ``redis://...``) or a
    :class:`~otel_sentry_biz.rules.state.StateStore`; it is opened only when a rule needs
    state. ``alert_tiers`` overrides the tier per impact (``{"HIGH": "immediate"}``).
    ``window_risk`` is the per-window risk tracker violations add to (default: the process's,
    see :func:`otel_sentry_biz.rules.risk_snapshot`). Invalid rules raise :class:`RuleError`
    listing every problem.
    """

    def __init__(
        self,
        rules: Iterable[RuleSpec],
        *,
        state: Union[str, StateStore, None] = None,
        alert_tiers: Optional[Mapping[str, str]] = None,
        clock: Callable[[], float] = time.time,
        source: Optional[str] = None,
        trace_risk_capacity: int = 10_000,
        window_risk: Optional[WindowRisk] = None,
    ) -> None:
        self.name = "rules" if source is None else f"rules:{source}"
        self.specs: tuple[RuleSpec, ...] = tuple(rules)
        problems = rule_problems(self.specs, source)
        try:
            tiers = alerting.alert_tiers(alert_tiers)
        except ValueError as exc:
            problems.append(f"{source + ': ' if source else ''}{exc}")
            tiers = {}
        if problems:
            raise RuleError(problems)
        self._clock = clock
        self._owns_store = not isinstance(state, StateStore)
        self.store: Optional[StateStore] = None
        if any(spec.stateful for spec in self.specs):
            self.store = open_store(state or DEFAULT_STATE_URL) if self._owns_store else state
        context = BuildContext(self.store, clock)
        self._index: RuleIndex[_Compiled] = RuleIndex(
            [(_selector(spec), _Compiled(spec, spec.build(context), tiers)) for spec in self.specs]
        )
        self._risk = alerting.TraceRisk(trace_risk_capacity)
        self._window_risk = window_risk
        #: Evaluations skipped because the state store was unavailable (approximate count).
        self.store_errors = 0

    def __len__(self) -> int:
        return len(self.specs)

    def __repr__(self) -> str:
        return f"<RuleSet {self.name} rules={len(self.specs)}>"

    def evaluate(self, span: ReadableSpan) -> list[Violation]:
        """The violations ``span`` commits; never raises."""
        attributes = span.attributes or {}
        candidates = self._index.candidates(span.name, attributes)
        if not candidates:
            return []
        # One plain copy for the rules that may apply: every lookup in the SDK's attribute
        # mapping goes through Mapping.__contains__/get and a raised KeyError when absent.
        attributes = dict(attributes)
        status = span.status.status_code.name.lower()
        view: Optional[SpanView] = None
        found: list[Violation] = []
        for selector, rule in candidates:
            if not selector.accepts(attributes, status):
                continue
            if view is None:
                view = SpanView(span, self._clock, attributes)
            try:
                for finding in rule.check.check(view):
                    found.append(self._violation(rule, view, finding))
            except StoreUnavailable:
                self.store_errors += 1  # the breaker logged it; a rule skip is not an error
            except Exception:
                _logger.exception("rule %r failed on span %r", rule.name, span.name)
        return found

    def trace_risk(self, trace_id: int) -> float:
        """The running risk score of a trace (0 when unknown or forgotten)."""
        return self._risk.score(trace_id)

    @property
    def window_risk(self) -> WindowRisk:
        """The per-window risk tracker this RuleSet's violations add to."""
        return self._window_risk if self._window_risk is not None else process_risk()

    def risk_snapshot(self) -> RiskSnapshot:
        """The running risk score of the current window (and the previous ones)."""
        return self.window_risk.snapshot()

    def close(self) -> None:
        """Close the state store this RuleSet opened. Idempotent."""
        if self.store is not None and self._owns_store:
            self.store.close()

    def _violation(self, rule: _Compiled, view: SpanView, finding: Finding) -> Violation:
        group = finding.group
        if rule.group_by:
            key = view.key(rule.group_by)
            group = display_key(key) if key is not None else None
        computed = {**finding.values, "rule": rule.name, "group": group or ""}
        values = Values(computed, view.get)
        message = render(rule.message, values)
        fingerprint = tuple(render(part, values) for part in rule.fingerprint)
        trace_id = view.span.context.trace_id if view.span.context else 0
        risk_score = self._risk.add(trace_id, rule.risk)
        data: dict[str, Any] = {}
        for field in rule.reads:
            value = view.get(field)
            if isinstance(value, _SCALARS):
                data[bare(field)] = value
        for key, value in finding.values.items():
            if isinstance(value, _SCALARS):
                data[key] = value
        data["alert_tier"] = rule.tier
        data["trace_risk"] = risk_score
        data["window_risk"] = self.window_risk.add(
            rule.risk, impact=rule.impact, category=rule.category, rule=rule.name
        )
        return Violation(
            rule=rule.name,
            impact=rule.impact,
            message=message,
            category=rule.category,
            group=group,
            risk=rule.risk,
            data=data,
            fingerprint=fingerprint,
        )


class _Compiled:
    """One rule, ready to run: its check plus everything needed to report it."""

    __slots__ = (
        "category",
        "check",
        "fingerprint",
        "group_by",
        "impact",
        "message",
        "name",
        "reads",
        "risk",
        "tier",
    )

    def __init__(self, spec: RuleSpec, check: Check, tiers: Mapping[Impact, str]) -> None:
        self.name = spec.name
        self.check = check
        self.impact = Impact.parse(spec.impact)
        self.category = Category.parse(spec.category or spec.default_category)
        self.message = spec.message or spec.default_message
        self.fingerprint = as_tuple(spec.fingerprint)
        self.group_by = as_tuple(spec.group_by)
        self.risk = (
            float(spec.risk) if spec.risk is not None else alerting.DEFAULT_RISK[self.impact]
        )
        self.tier = spec.alert_tier or tiers[self.impact]
        # The business keys a violation concerns travel with it, so on-call can search them.
        self.reads = tuple(dict.fromkeys((*self.group_by, *spec.needs())))


def _selector(spec: RuleSpec) -> Selector:
    needed = (*as_tuple(spec.requires), *spec.needs(), *as_tuple(spec.group_by))
    return Selector(
        as_tuple(spec.span),
        as_tuple(spec.op),
        (field for field in needed if not field.startswith(SPAN_PREFIX)),
        spec.status,
    )
