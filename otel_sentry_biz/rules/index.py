"""Which rules can apply to a span, found without looking at the rules that cannot.

Rules are indexed by what they apply to: span-name and op patterns are matched once per
distinct (span name, op) pair and the answer is cached, and within that answer the rules that
need attributes are bucketed by their first required attribute, so a span without ``amount``
never looks at the amount rules. When the rules key on more attribute names than a span
carries, the span's own attributes are walked instead of the buckets, so rules keyed on
attributes a span lacks cost it nothing at all. The per-span cost therefore grows with the
rules that *may* apply, not with the size of the rule set (issue 3's cost clause).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, Optional, TypeVar

from otel_sentry_biz import attributes as attr
from otel_sentry_biz.rules.span_view import SPAN_PREFIX, alternatives

R = TypeVar("R")

#: Distinct (span name, op) pairs remembered; span names are usually few, but a badly
#: instrumented app may put ids in them, so the cache is bounded and simply restarts when full.
_CACHE_LIMIT = 4096
_GLOB_CHARS = re.compile(r"[*?\[]")


class Selector:
    """The "applies to" of one rule: span/op globs, required attributes, status."""

    __slots__ = ("_op", "_op_patterns", "_pairs", "_span", "_span_patterns", "requires", "status")

    def __init__(
        self,
        span: Sequence[str],
        op: Sequence[str],
        requires: Iterable[str],
        status: Optional[str],
    ) -> None:
        self._span = tuple(span)
        self._op = tuple(op)
        self._span_patterns = [_compile(p) for p in self._span]
        self._op_patterns = [_compile(p) for p in self._op]
        # Pseudo-fields (span.*) are always present; each other field may be bare or biz.*.
        self.requires = tuple(
            alternatives(field)
            for field in dict.fromkeys(requires)
            if not field.startswith(SPAN_PREFIX)
        )
        # (name, other name or None) pairs: two dict lookups per field, no generator, since
        # this runs for every candidate rule of every span.
        self._pairs = tuple(
            (names[0], names[1] if len(names) > 1 else None) for names in self.requires
        )
        self.status = status

    def matches_name(self, name: str, op: Optional[str]) -> bool:
        if self._span_patterns and not any(p(name) for p in self._span_patterns):
            return False
        if self._op_patterns:
            return op is not None and any(p(op) for p in self._op_patterns)
        return True

    def accepts(self, attributes: Mapping[str, Any], status: str) -> bool:
        """Required attributes present and status right (the name was matched by the index)."""
        for name, other in self._pairs:
            if name not in attributes and (other is None or other not in attributes):
                return False
        return self.status is None or self.status == status


class RuleIndex(Generic[R]):
    """Rules with their :class:`Selector`, looked up by span name and op."""

    def __init__(self, rules: Sequence[tuple[Selector, R]]) -> None:
        self._rules = tuple(rules)
        self._cache: dict[tuple[str, Optional[str]], tuple[Any, ...]] = {}

    def candidates(self, name: str, attributes: Mapping[str, Any]) -> list[tuple[Selector, R]]:
        """The rules whose span/op patterns match and whose first required attribute is set."""
        op = attributes.get(attr.SENTRY_OP)
        if not isinstance(op, str):
            op = None
        plan = self._cache.get((name, op))
        if plan is None:
            plan = self._plan(name, op)
        unconditional, by_attribute, by_name = plan
        if not by_attribute:
            return unconditional
        found = list(unconditional)
        if len(attributes) < len(by_name):
            # Fewer attributes on the span than names the rules key on: walk the span's
            # attributes, so rules keyed on attributes it lacks cost nothing (a set of
            # hundreds of rules costs what the few that may apply cost).
            hits = {by_name[key] for key in attributes if key in by_name}
            for bucket in sorted(hits):
                found.extend(by_attribute[bucket][1])
            return found
        for names, rules in by_attribute:
            for candidate in names:
                if candidate in attributes:
                    found.extend(rules)
                    break
        return found

    def _plan(self, name: str, op: Optional[str]) -> tuple[Any, ...]:
        unconditional: list[tuple[Selector, R]] = []
        keyed: dict[tuple[str, ...], list[tuple[Selector, R]]] = {}
        for selector, rule in self._rules:
            if not selector.matches_name(name, op):
                continue
            if selector.requires:
                keyed.setdefault(selector.requires[0], []).append((selector, rule))
            else:
                unconditional.append((selector, rule))
        by_attribute = tuple((names, tuple(rules)) for names, rules in keyed.items())
        # Each name a bucket keys on (``amount`` and ``biz.amount``) -> the bucket's position.
        by_name = {
            candidate: position
            for position, (names, _) in enumerate(by_attribute)
            for candidate in names
        }
        plan = (unconditional, by_attribute, by_name)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(name, op)] = plan
        return plan


def _compile(pattern: str):
    if not _GLOB_CHARS.search(pattern):
        return pattern.__eq__
    return re.compile(fnmatch.translate(pattern)).match
