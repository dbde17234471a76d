"""Duplicate: the same key tuple seen twice inside a window (a duplicate billing entry).

>>> Duplicate(name="duplicate_line", key=["work_request", "item", "quantity", "unit_price"],
...           window="1d", impact="CRITICAL", span="bill_line")

The first span with a key marks it in the state store for ``window``; every later span with
the same key within the window violates the rule.
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
    duration_label,
    duration_problem,
    parse_duration,
)


@dataclass(frozen=True)
class Duplicate(RuleSpec):
    """A second span with the same values of ``key`` within ``window`` violates the rule."""

    kind: ClassVar[str] = "duplicate"
    stateful: ClassVar[bool] = True
    default_message: ClassVar[str] = "duplicate {key} within {window}"

    key: Optional[Union[str, Sequence[str]]] = field(default=None, metadata=REQUIRED)
    window: Optional[Duration] = field(default=None, metadata=REQUIRED)

    def needs(self) -> tuple[str, ...]:
        return as_tuple(self.key)

    def kind_problems(self) -> list[str]:
        found = duration_problem("window", self.window)
        if not as_tuple(self.key):
            found.append("key is empty: list the attributes forming the key")
        return found

    def build(self, context: BuildContext) -> DuplicateCheck:
        return DuplicateCheck(
            self.name, context.store, as_tuple(self.key), parse_duration(self.window)
        )


class DuplicateCheck:
    def __init__(self, rule: str, store, key: tuple[str, ...], window: float) -> None:
        self._rule = rule
        self._store = store
        self._key = key
        self._window = window
        self._label = duration_label(window)

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        key = span.key(self._key)
        if key is None or self._store.add_once(f"dup:{self._rule}:{key}", self._window):
            return ()
        shown = display_key(key)
        return (Finding({"key": shown, "window": self._label}, group=shown),)
