"""The SQLAlchemy instrumentor's settings: arguments, then variables, then defaults.

Every setting is declared once in :data:`VARIABLES`; ``docs/instrumentors/sqlalchemy.md`` lists
the same table. Values are validated here, when ``instrument()`` is called, and an error names
the argument or variable, the bad value and what to write instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Callable, NamedTuple

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.impact import Impact


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _milliseconds(value: Any) -> float:
    number = float(value)
    if not number >= 0.0:  # also refuses NaN
        raise ValueError("must be a number of milliseconds, 0 to turn the check off")
    return number


def _repeats(value: Any) -> int:
    if isinstance(value, bool) or float(value) != int(float(value)):
        raise ValueError("must be a whole number")
    number = int(float(value))
    if number < 0 or number == 1:
        raise ValueError("must be 2 or more, or 0 to turn the check off")
    return number


class Variable(NamedTuple):
    field: str
    name: str
    parse: Callable[[Any], Any]
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "capture_literals",
        "OTEL_SENTRY_BIZ_SQL_LITERALS",
        _bool,
        "Keep literal values in db.query.text (default false: each becomes ?).",
    ),
    Variable(
        "slow_query_ms",
        "OTEL_SENTRY_BIZ_SQL_SLOW_MS",
        _milliseconds,
        "A statement running this long or longer is a slow_query violation; 0 turns it off.",
    ),
    Variable(
        "n_plus_one",
        "OTEL_SENTRY_BIZ_SQL_N_PLUS_ONE",
        _repeats,
        "The same statement shape run this often in one trace is an n_plus_one violation; "
        "0 turns it off.",
    ),
    Variable(
        "impact",
        "OTEL_SENTRY_BIZ_SQL_IMPACT",
        Impact.parse,
        "Business impact of the performance violations (LOW, MEDIUM, HIGH, CRITICAL).",
    ),
)


@dataclass(frozen=True)
class SQLSettings:
    """What the SQLAlchemy instrumentor records and judges.

    >>> SQLSettings.load({"slow_query_ms": 200}, environ={}).slow_query_ms
    200.0
    """

    capture_literals: bool = False
    slow_query_ms: float = 500.0
    n_plus_one: int = 10
    impact: Impact = Impact.LOW

    @classmethod
    def load(
        cls, arguments: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> SQLSettings:
        """Build from ``arguments`` (``instrument()`` keywords), then ``environ``, then defaults.

        Raises :class:`~otel_sentry_biz.ConfigError` naming the argument or variable.
        """
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            if arguments.get(variable.field) is not None:
                source, raw = f"{variable.field}=", arguments[variable.field]
            elif environ.get(variable.name, "").strip():
                source, raw = f"{variable.name}=", environ[variable.name]
            else:
                continue
            try:
                values[variable.field] = variable.parse(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{source}{raw!r} is invalid: {exc}. {variable.meaning}"
                ) from None
        return cls(**values)


SETTING_NAMES = frozenset(field.name for field in fields(SQLSettings))
