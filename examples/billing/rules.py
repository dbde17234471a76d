"""The billing rule set, with after-hours judged on when a line was keyed in.

The shipped ``billing`` set judges "after hours" on the span's own end time: when the app
touches the data. A batch job bills lines long after the field office entered them, so this
example points that one rule at the line's ``entered_at`` instead (the set's header invites
such adjustments). Every other rule is the shipped one, unchanged, and the example gives
the same result whenever it runs.
"""

from __future__ import annotations

import dataclasses

from otel_sentry_biz.rules import RuleSet, rules_from_setting


def billing_rules() -> RuleSet:
    """The shipped billing rules; ``after_hours_change`` reads the ``entered_at`` attribute."""
    shipped = rules_from_setting("billing")
    try:
        specs = [
            dataclasses.replace(spec, attribute="entered_at")
            if spec.name == "after_hours_change"
            else spec
            for spec in shipped.specs
        ]
    finally:
        shipped.close()
    return RuleSet(specs, source="billing")
