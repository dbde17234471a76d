"""BusinessSpanProcessor: business context onto spans at start, judgements onto them at end."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Callable, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.classify import ErrorClassifier
from otel_sentry_biz.context import current_business
from otel_sentry_biz.rules import Rule, Violation
from otel_sentry_biz.spans import events_of

_logger = logging.getLogger("otel_sentry_biz.processor")

#: What the app gives ``on_violation``: called with each violation a rule finds.
ViolationHandler = Callable[[Violation], None]


class BusinessSpanProcessor(SpanProcessor):
    """Enrich spans with business context and judge them, then hand them to ``next``.

    >>> provider.add_span_processor(
    ...     BusinessSpanProcessor(next=BatchSpanProcessor(SentrySpanExporter())))

    ``on_start`` copies the business context (:func:`otel_sentry_biz.context`) onto the span
    as ``biz.*`` attributes, never overwriting what instrumentation already set. ``on_end``
    classifies failed spans and their exceptions by impact and category and runs ``rules``;
    because the SDK freezes a span when it ends, those results travel on an enriched copy
    handed to ``next``. Spans with nothing to add are passed on as they are, at no cost.

    ``on_violation`` lets the app react to what the rules find (pause what keeps failing,
    say): it is called with each :class:`~otel_sentry_biz.rules.Violation` a rule returns for
    a span, in order, after the span is judged and handed on, on the thread that ended it; so
    when the code that ended the span carries on, the app has already been told. Violations
    the app records itself (``biz.violation(...)``) are not passed back to it. It should be
    quick; what it raises is logged, never raised into the app.

    Threading: ``on_start``/``on_end`` run synchronously on the thread that starts/ends the
    span; they do not block and never raise (failures are logged and the span passes on).
    """

    def __init__(
        self,
        next: Optional[SpanProcessor] = None,
        *,
        classifier: Optional[ErrorClassifier] = None,
        rules: Sequence[Rule] = (),
        on_violation: Optional[ViolationHandler] = None,
    ) -> None:
        self._next = next
        self._classifier = classifier or ErrorClassifier()
        self._rules = tuple(rules)
        if on_violation is not None and not callable(on_violation):
            raise TypeError(
                f"on_violation={on_violation!r} is not callable: "
                "pass a function taking the Violation"
            )
        self._on_violation = on_violation
        for rule in self._rules:
            if not isinstance(rule, Rule):
                raise TypeError(
                    f"{rule!r} is not a rule: give it a name and an evaluate(span) method"
                )

    @property
    def next(self) -> Optional[SpanProcessor]:
        return self._next

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        try:
            business = current_business(parent_context)
            if business:
                existing = span.attributes or {}
                # Never overwrite what the instrumentation (or the app) already set.
                span.set_attributes({k: v for k, v in business.items() if k not in existing})
        except Exception:
            _logger.exception("could not copy the business context onto span %r", span.name)
        if self._next is not None:
            self._next.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        violations: Sequence[Violation] = ()
        try:
            violations = self._evaluate_rules(span) if self._rules else ()
            judged = self._judge(span, violations)
        except Exception:
            _logger.exception("could not judge span %r; passing it on unchanged", span.name)
            judged = span
        if self._next is not None:
            self._next.on_end(judged)
        # Hot path: a span without violations costs one check, with or without a handler.
        if violations and self._on_violation is not None:
            _notify(self._on_violation, violations)

    def _judge(self, span: ReadableSpan, violations: Sequence[Violation]) -> ReadableSpan:
        failed = span.status.status_code is StatusCode.ERROR
        # Hot path: a clean span without exception events costs one status check.
        if not failed and not violations and not events_of(span):
            return span
        extra_attrs: dict[str, Any] = {}
        events = list(events_of(span))
        changed = False
        for index, event in enumerate(events):
            if event.name == attr.EXCEPTION_EVENT:
                judged_event = self._judge_exception(span, event)
                if judged_event is not event:
                    events[index] = judged_event
                    changed = True
        attributes = span.attributes or {}
        missing = [key for key in (attr.IMPACT, attr.CATEGORY) if key not in attributes]
        if failed and missing:
            exc_type, message = _failure_of(span)
            judgement = self._classifier.classify(
                exc_type,
                message,
                span_name=span.name,
                operation=str(attributes.get(attr.OPERATION, "")),
                kind=span.kind,
            )
            judged = {attr.IMPACT: judgement.impact.value, attr.CATEGORY: judgement.category.value}
            extra_attrs = {key: judged[key] for key in missing}
        for found in violations:
            events.append(Event(attr.VIOLATION_EVENT, found.event_attributes(), span.end_time))
            changed = True
        if not changed and not extra_attrs:
            return span
        return _copy_with(span, extra_attrs, events)

    def _judge_exception(self, span: ReadableSpan, event: Event) -> Event:
        event_attrs = event.attributes or {}
        if attr.IMPACT in event_attrs and attr.CATEGORY in event_attrs:
            return event
        span_attrs = span.attributes or {}
        judgement = self._classifier.classify(
            str(event_attrs.get(attr.EXCEPTION_TYPE, "")),
            str(event_attrs.get(attr.EXCEPTION_MESSAGE, "")),
            span_name=span.name,
            operation=str(span_attrs.get(attr.OPERATION, "")),
            kind=span.kind,
        )
        merged = dict(event_attrs)
        # The span's declared impact (operation(impact=...)) outranks the default mapping.
        merged.setdefault(attr.IMPACT, span_attrs.get(attr.IMPACT, judgement.impact.value))
        merged.setdefault(attr.CATEGORY, span_attrs.get(attr.CATEGORY, judgement.category.value))
        return Event(event.name, merged, event.timestamp)

    def _evaluate_rules(self, span: ReadableSpan) -> list[Violation]:
        found: list[Violation] = []
        for rule in self._rules:
            try:
                found.extend(rule.evaluate(span))
            except Exception:
                _logger.exception(
                    "rule %r failed on span %r", getattr(rule, "name", rule), span.name
                )
        return found

    def shutdown(self) -> None:
        if self._next is not None:
            self._next.shutdown()
        for rule in self._rules:
            close = getattr(rule, "close", None)  # rules with state (files, connections)
            if close is not None:
                try:
                    close()
                except Exception:
                    _logger.exception("could not close rule %r", getattr(rule, "name", rule))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._next is None:
            return True
        return self._next.force_flush(timeout_millis)


def _notify(handler: ViolationHandler, violations: Sequence[Violation]) -> None:
    for found in violations:
        try:
            handler(found)
        except Exception:  # the app's handler must not break the code that ended the span
            _logger.exception("on_violation failed on violation %r", found.rule)


def _failure_of(span: ReadableSpan) -> tuple[str, str]:
    """Type and message of the span's failure: its last exception, else its status text."""
    for event in reversed(events_of(span)):
        if event.name == attr.EXCEPTION_EVENT and event.attributes:
            return (
                str(event.attributes.get(attr.EXCEPTION_TYPE, "")),
                str(event.attributes.get(attr.EXCEPTION_MESSAGE, "")),
            )
    description = span.status.description or ""
    exc_type, _, message = description.partition(": ")
    return (exc_type, message) if message else ("", description)


def _copy_with(
    span: ReadableSpan, extra_attrs: dict[str, Any], events: list[Event]
) -> ReadableSpan:
    attributes = {**extra_attrs, **(span.attributes or {})}
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
