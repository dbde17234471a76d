"""docs/rules.md stays true: every TOML example loads, every kind is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otel_sentry_biz.rules import KINDS, parse_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
EXAMPLES = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.DOTALL)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
def test_every_toml_example_is_a_valid_rules_file(example):
    assert parse_rules(example, "docs/rules.md").rules


def test_every_kind_has_a_section_and_an_example():
    text = DOC.read_text()
    declared = {spec.kind for example in EXAMPLES for spec in parse_rules(example).rules}
    for kind in KINDS:
        assert f"### {kind} " in text, f"docs/rules.md has no section for {kind}"
        assert kind in declared, f"docs/rules.md has no TOML example of {kind}"
