"""Consistency: one key maps to one value (one work request -> one foreman).

>>> Consistency(name="one_customer_per_work_request", key="work_request", value="customer",
...             impact="CRITICAL", span="process_work_request")

The first value seen for a key within ``window`` wins (kept in the state store, so all
processes agree on it); a span with another value violates the rule, once per distinct
conflicting value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from otel_sentry_biz.rules.span_view import display_key
from otel_sentry_biz.rules.spec import (
    REQUIRED,
    BuildContext,
    Duration,
    Finding,
    RuleSpec,
    SpanFacts,
    as_tuple,
    duration_problem,
    parse_duration,
)


@dataclass(frozen=True)
class Consistency(RuleSpec):
    """Every span with the same ``key`` must carry the same ``value``."""

    kind: ClassVar[str] = "consistency"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = "{key}: {attribute} {value} conflicts with earlier {first}"

    key: Optional[Union[str, Sequence[str]]] = field(default=None, metadata=REQUIRED)
    value: Optional[str] = field(default=None, metadata=REQUIRED)
    #: How long the first value is remembered after it was first seen.
    window: Duration = "30d"

    def needs(self) -> tuple[str, ...]:
        return (*as_tuple(self.key), *([self.value] if self.value else []))

    def kind_problems(self) -> list[str]:
        found = duration_problem("window", self.window)
        if not as_tuple(self.key):
            found.append("key is empty: list the attributes forming the key")
        if self.value in as_tuple(self.key):
            found.append(f"value {self.value!r} is also part of the key: pick another attribute")
        return found

    def build(self, context: BuildContext) -> ConsistencyCheck:
        return ConsistencyCheck(
            self.name, context.store, as_tuple(self.key), self.value or "", self.window
        )


class ConsistencyCheck:
    def __init__(
        self, rule: str, store, key: tuple[str, ...], value: str, window: Duration
    ) -> None:
        self._rule = rule
        self._store = store
        self._key = key
        self._value = value
        self._ttl = parse_duration(window)

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        key = span.key(self._key)
        value = span.get(self._value)
        if key is None or value is None:
            return ()
        value = str(value)
        state_key = f"one:{self._rule}:{key}"
        first = self._store.put_if_absent(state_key, value, self._ttl)
        if first == value:
            return ()
        # One report per conflicting value, not one per span that repeats it.
        if not self._store.add_once(f"{state_key}:conflict:{value}", self._ttl):
            return ()
        shown = display_key(key)
        return (
            Finding(
                {"key": shown, "attribute": self._value, "value": value, "first": first},
                group=shown,
            ),
        )
