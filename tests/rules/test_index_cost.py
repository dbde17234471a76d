"""Rules that cannot apply to a span cost it nothing: the index walks the span, not the rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from otel_sentry_biz.rules import RuleSet, Threshold
from otel_sentry_biz.rules.index import RuleIndex, Selector


class CountingAttributes(Mapping[str, Any]):
    """Span attributes that count how often the index probes them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.probes = 0

    def __getitem__(self, key: str) -> Any:
        self.probes += 1
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        self.probes += 1
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _index(idle: int) -> RuleIndex[str]:
    rules = [(Selector((), (), ["amount"], None), "amount")]
    rules += [(Selector((), (), [f"never_{n}"], None), f"idle_{n}") for n in range(idle)]
    return RuleIndex(rules)


def test_probes_do_not_grow_with_rules_keyed_on_absent_attributes():
    probes = {}
    for idle in (0, 10, 1000):
        attributes = CountingAttributes({"biz.amount": 5.0, "biz.customer": "ACME"})
        found = _index(idle).candidates("bill_line", attributes)
        assert [rule for _, rule in found] == ["amount"]
        probes[idle] = attributes.probes
    assert probes[1000] <= probes[10] <= 2 + len(attributes)


def test_candidates_keep_rule_order_and_find_each_rule_once():
    index = RuleIndex(
        [
            (Selector((), (), ["b"], None), "first"),
            (Selector((), (), ["a"], None), "second"),
            (Selector((), (), ["b"], None), "third"),
            *[(Selector((), (), [f"x{n}"], None), f"idle{n}") for n in range(20)],
        ]
    )
    # Both "a" and "biz.a" present: the bucket still comes once. Order is the buckets' (by
    # their first rule), whichever way the index walks, so violations keep a stable order.
    expected = ["first", "third", "second"]
    found = index.candidates("op", {"biz.a": 1, "a": 1, "b": 2})
    assert [rule for _, rule in found] == expected
    small = RuleIndex(
        [
            (Selector((), (), ["b"], None), "first"),
            (Selector((), (), ["a"], None), "second"),
            (Selector((), (), ["b"], None), "third"),
        ]
    )
    many = {"biz.a": 1, "a": 1, "b": 2, **{f"pad{n}": n for n in range(10)}}
    assert [rule for _, rule in small.candidates("op", many)] == expected


def test_a_rule_set_with_hundreds_of_idle_rules_judges_like_the_small_one(judge):
    specs = [Threshold(name="big", attribute="amount", above=10, impact="HIGH")]
    specs += [Threshold(name=f"idle_{n}", attribute=f"never_{n}", above=1) for n in range(300)]
    judge.use(*specs)
    assert [v["biz.violation.rule"] for v in judge.span(amount=11)] == ["big"]
    assert judge.span(amount=9) == []
    assert isinstance(judge.rules, RuleSet) and len(judge.rules) == 301
