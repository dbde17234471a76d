"""Data quality scores for batches: ``validate_batch(rows, schema)``.

The billing seed scores each batch 0-100 from its data completeness, schema compliance, errors
(major deductions) and warnings (minor ones), and alerts when a batch scores under 80:

>>> LINES = biz.Schema(
...     {
...         "work_request": {"type": "str", "pattern": r"WR-\\d+"},
...         "quantity": {"type": "number", "min": 0, "max": 1000},
...         "unit_price": {"type": "number", "min": 0.01},
...         "work_date": "date",
...         "status": {"allowed": ["open", "closed"], "required": False},
...         "foreman": {"type": "str", "severity": "warning"},
...     },
...     name="billing_lines",
... )
>>> result = biz.validate_batch(rows, LINES)
>>> result.score, result.completeness, result.compliance, result.errors[:3]

A schema is checked when it is built: a bad type, range or regex raises :class:`SchemaError`
naming the field and the fix. Validating rows never raises into the application: a row that is
not a mapping, a value of the wrong type, a row check that raises are all just errors of the
batch. The result is recorded on the current span (``biz.quality.*`` attributes, a
``biz.quality`` event and the ``data_quality_score`` measurement), and a score under the floor
raises a ``data_quality`` violation, one Sentry issue per batch name.

**The score.** ``completeness`` is the share of required cells that hold a value (not missing,
None, NaN or blank); ``compliance`` the share of checked values (present cells, plus one per row
per row check) that pass their error-severity checks. Both are percentages, and::

    score = (completeness + compliance) / 2
            - 100 x (rows with an error / rows)      # errors: major deductions
            -  20 x (rows with a warning / rows)     # warnings: minor deductions

clamped to 0-100 and rounded to one decimal. One bad row in ten scores about 88; two in ten
about 76, under the default floor of 80. An empty batch scores 100.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import difflib
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Optional, Union

from opentelemetry import trace

from otel_sentry_biz.capture import violation
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.context import context as business_context
from otel_sentry_biz.impact import Category, Impact
from otel_sentry_biz.rules import alerting, measurement
from otel_sentry_biz.rules.risk import process_risk

_logger = logging.getLogger("otel_sentry_biz.rules.quality")
_tracer = trace.get_tracer("otel_sentry_biz")

#: The billing seed alerts on a data quality score under 80.
DEFAULT_QUALITY_FLOOR = 80.0
#: Rule name of the violation a batch under its floor raises (its group is the batch name).
QUALITY_RULE = "data_quality"
#: The Sentry measurement of the score, on the transaction the batch was validated in.
QUALITY_MEASUREMENT = "data_quality_score"
QUALITY_EVENT = "biz.quality"
QUALITY_PREFIX = "biz.quality."
#: Problems summarised on the span event and the violation ("amount: missing (3 rows)").
SUMMARY_LIMIT = 5

TYPES = ("str", "int", "number", "bool", "date", "datetime")
_TYPE_ALIASES = {"string": "str", "integer": "int", "float": "number", "boolean": "bool"}
SEVERITIES = ("error", "warning")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
_INT_TEXT = re.compile(r"^[+-]?\d{1,3}(,\d{3})*$|^[+-]?\d+$")
_MISSING = object()


class SchemaError(ConfigError):
    """A schema is invalid. ``problems`` lists each one with the field it concerns and the fix."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid schema:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class FieldSpec:
    """What one field of a row must hold.

    ``type``: ``str``, ``int``, ``number`` (ints, floats, Decimals and numeric strings such as
    ``"1,520.00"`` or ``"$12.50"``), ``bool``, ``date`` (a ``date`` or ``"2025-06-02"``) or
    ``datetime`` (a ``datetime`` or an ISO string); None accepts any value.
    ``required``: the field must hold a value (missing, None, NaN and blank strings count as
    empty); an optional empty field is not checked. ``min``/``max``: inclusive limits, numbers
    for ``int``/``number``, ISO dates for ``date``. ``allowed``: the values it may take.
    ``pattern``: a regular expression the whole value must match. ``severity``: ``"warning"``
    makes this field's problems warnings (minor deductions) instead of errors.
    """

    type: Optional[str] = None
    required: bool = True
    min: Optional[Union[float, str]] = None
    max: Optional[Union[float, str]] = None
    allowed: Optional[Sequence[Any]] = None
    pattern: Optional[str] = None
    severity: str = "error"

    def problems(self) -> list[str]:
        """Everything wrong with this spec, each with its fix; empty when it is valid."""
        found: list[str] = []
        kind = _type_name(self.type)
        if self.type is not None and kind not in TYPES:
            found.append(
                f"unknown type {self.type!r}{_did_you_mean(str(self.type), TYPES)}: use one of "
                f"{', '.join(TYPES)}"
            )
        if not isinstance(self.required, bool):
            found.append(f"required must be true or false, not {self.required!r}")
        if self.severity not in SEVERITIES:
            found.append(f"unknown severity {self.severity!r}: use error or warning")
        limits = {"min": self.min, "max": self.max}
        parsed: dict[str, Any] = {}
        for label, limit in limits.items():
            if limit is None:
                continue
            if kind in ("str", "bool", "datetime"):
                found.append(
                    f"{label} does not apply to type {kind}: limits are for int, number and "
                    "date fields (use pattern or allowed for strings)"
                )
            elif kind == "date":
                value = _as_date(limit)
                if value is None:
                    found.append(f"{label} must be an ISO date for a date field, e.g. 2020-01-01")
                parsed[label] = value
            else:
                value = _as_number(limit) if not isinstance(limit, str) else None
                if value is None:
                    found.append(f"{label} must be a number, not {limit!r}")
                parsed[label] = value
        low, high = parsed.get("min"), parsed.get("max")
        if low is not None and high is not None and low > high:
            found.append(f"min {self.min!r} is over max {self.max!r}: swap them")
        if self.allowed is not None:
            if isinstance(self.allowed, (str, bytes)) or not isinstance(self.allowed, Sequence):
                found.append('allowed must be a list of values, e.g. ["open", "closed"]')
            elif not self.allowed:
                found.append("allowed is empty: list the values the field may take")
        if self.pattern is not None:
            if not isinstance(self.pattern, str):
                found.append(f"pattern must be a regular expression string, not {self.pattern!r}")
            else:
                try:
                    re.compile(self.pattern)
                except re.error as exc:
                    found.append(
                        f"pattern {self.pattern!r} is not a valid regular expression ({exc}): "
                        r"escape special characters, e.g. WR-\d+ (in TOML: 'WR-\d+')"
                    )
        return found


class Schema:
    """A declarative schema for the rows of a batch: field name -> :class:`FieldSpec`.

    ``fields`` values may be a FieldSpec, a mapping of its fields (``{"type": "number",
    "min": 0}``, as in TOML) or a type name alone (``"date"``: a required date). ``name`` names
    the batch (its Sentry issue and tags); ``floor`` is the score under which a batch raises a
    violation of ``impact`` (default MEDIUM). ``checks`` are row checks across fields: name ->
    ``check(row)`` returning None or True when the row is fine, else a problem (a string, or
    False). Raises :class:`SchemaError` listing every problem.
    """

    def __init__(
        self,
        fields: Mapping[str, Union[FieldSpec, Mapping[str, Any], str]],
        *,
        name: str = "batch",
        floor: float = DEFAULT_QUALITY_FLOOR,
        impact: Union[Impact, str] = Impact.MEDIUM,
        checks: Optional[Mapping[str, Callable[[Any], Any]]] = None,
    ) -> None:
        problems: list[str] = []
        specs: dict[str, FieldSpec] = {}
        if not isinstance(fields, Mapping):
            problems.append(
                'fields must be a mapping of field name to spec, e.g. {"amount": "number"}'
            )
            fields = {}
        for field_name, raw in fields.items():
            label = f"field {field_name!r}"
            if not isinstance(field_name, str) or not field_name.strip():
                problems.append(f"{label}: field names must be non-empty strings")
                continue
            spec, spec_problems = _field_spec(raw)
            problems.extend(f"{label}: {problem}" for problem in spec_problems)
            if spec is not None:
                specs[field_name] = spec
        if not specs and not checks and not problems:
            problems.append("no fields: name at least one field, e.g. {'amount': 'number'}")
        if not isinstance(name, str) or not name.strip():
            problems.append("name must be a non-empty string naming the batch, e.g. 'invoices'")
        floor_problem = _floor_problem(floor)
        if floor_problem:
            problems.append(floor_problem)
        try:
            parsed_impact = Impact.parse(impact)
        except ValueError as exc:
            problems.append(str(exc))
            parsed_impact = Impact.MEDIUM
        checks = dict(checks or {})
        for check_name, check in checks.items():
            if not isinstance(check_name, str) or not check_name.strip():
                problems.append(f"check {check_name!r}: name each row check with a string")
            if not callable(check):
                problems.append(
                    f"check {check_name!r}: {check!r} is not callable: give a function taking "
                    "the row and returning None when it is fine, else a problem string"
                )
        if problems:
            where = f"schema {name!r}: " if isinstance(name, str) else ""
            raise SchemaError(f"{where}{problem}" for problem in problems)
        self.name = name
        self.floor = float(floor)
        self.impact = parsed_impact
        self.fields: Mapping[str, FieldSpec] = MappingProxyType(specs)
        self.checks: Mapping[str, Callable[[Any], Any]] = MappingProxyType(checks)
        self._compiled = tuple(_Field(field_name, spec) for field_name, spec in specs.items())
        self._required = sum(1 for spec in specs.values() if spec.required)

    def __repr__(self) -> str:
        return f"<Schema {self.name} fields={len(self.fields)} floor={self.floor:g}>"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a batch: row index (None: the batch), field (or check), problem.

    ``problem`` never quotes the value (it travels to the span and Sentry); ``value`` holds it
    for the caller only.
    """

    row: Optional[int]
    field: Optional[str]
    problem: str
    severity: str = "error"
    value: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        where = "batch" if self.row is None else f"row {self.row}"
        return (
            f"{where}, {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"
        )


@dataclass(frozen=True)
class QualityResult:
    """The quality of one batch. Percentages and the score are 0-100.

    ``errors``/``warnings`` hold the first ``max_problems`` problems of each severity;
    ``error_count``/``warning_count`` count them all; ``error_rows`` are the indexes of the
    rows with an error (to set them aside). ``window_risk`` is the process's risk score after
    the violation this batch raised (None when it passed).
    """

    name: str
    score: float
    completeness: float
    compliance: float
    rows: int
    error_count: int
    warning_count: int
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    error_rows: tuple[int, ...]
    floor: float
    summary: tuple[str, ...] = ()
    window_risk: Optional[float] = None

    @property
    def passed(self) -> bool:
        """Whether the score is at or above the floor."""
        return self.score >= self.floor

    def attributes(self) -> dict[str, Any]:
        """The ``biz.quality.*`` span attributes of this result."""
        return {
            QUALITY_PREFIX + "batch": self.name,
            QUALITY_PREFIX + "score": self.score,
            QUALITY_PREFIX + "completeness": self.completeness,
            QUALITY_PREFIX + "compliance": self.compliance,
            QUALITY_PREFIX + "rows": self.rows,
            QUALITY_PREFIX + "errors": self.error_count,
            QUALITY_PREFIX + "warnings": self.warning_count,
            QUALITY_PREFIX + "error_rows": len(self.error_rows),
            QUALITY_PREFIX + "floor": self.floor,
            QUALITY_PREFIX + "passed": self.passed,
        }


def validate_batch(
    rows: Iterable[Any],
    schema: Union[Schema, Mapping[str, Any]],
    *,
    floor: Optional[float] = None,
    name: Optional[str] = None,
    impact: Optional[Union[Impact, str]] = None,
    max_problems: Optional[int] = 100,
    record: bool = True,
) -> QualityResult:
    """Score ``rows`` against ``schema``; record the score; raise a violation under the floor.

    ``rows`` are mappings (dicts, ``csv.DictReader`` rows, ``df.to_dict("records")``; a
    DataFrame is converted) or objects whose attributes are the fields. ``floor``, ``name``
    and ``impact`` override the schema's. ``record=False`` only scores. Bad rows never raise;
    a bad schema or floor raises :class:`SchemaError` (a ``ValueError``).
    """
    if not isinstance(schema, Schema):
        schema = Schema(schema, name=name or "batch")
    problems = []
    if floor is not None:
        problem = _floor_problem(floor)
        if problem:
            problems.append(problem)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        problems.append("name must be a non-empty string naming the batch, e.g. 'invoices'")
    if max_problems is not None and (
        isinstance(max_problems, bool) or not isinstance(max_problems, int) or max_problems < 0
    ):
        problems.append(f"max_problems must be an integer >= 0 or None, not {max_problems!r}")
    try:
        judged_impact = Impact.parse(impact) if impact is not None else schema.impact
    except ValueError as exc:
        problems.append(str(exc))
        judged_impact = schema.impact
    if problems:
        raise SchemaError(problems)
    result = _score(
        rows,
        schema,
        name or schema.name,
        float(schema.floor if floor is None else floor),
        max_problems,
    )
    if record:
        result = _record(result, judged_impact)
    return result


# -- scoring --------------------------------------------------------------------------------


class _Tally:
    __slots__ = (
        "checked",
        "error_count",
        "error_rows",
        "errors",
        "failed",
        "filled",
        "limit",
        "required_cells",
        "rows",
        "summary",
        "warning_count",
        "warning_rows",
        "warnings",
    )

    def __init__(self, limit: Optional[int]) -> None:
        self.limit = limit
        self.rows = self.required_cells = self.filled = self.checked = self.failed = 0
        self.error_count = self.warning_count = self.warning_rows = 0
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.error_rows: list[int] = []
        self.summary: Counter[tuple[Optional[str], str]] = Counter()

    def add(self, problem: Problem) -> None:
        if problem.severity == "error":
            self.error_count += 1
            kept = self.errors
        else:
            self.warning_count += 1
            kept = self.warnings
        if self.limit is None or len(kept) < self.limit:
            kept.append(problem)
        if len(self.summary) < 1000 or (problem.field, problem.problem) in self.summary:
            self.summary[(problem.field, problem.problem)] += 1


def _score(
    rows: Iterable[Any], schema: Schema, name: str, floor: float, limit: Optional[int]
) -> QualityResult:
    tally = _Tally(limit)
    try:
        _tally_rows(_rows_of(rows), schema, tally)
    except Exception as exc:  # the iterable itself failed (a generator raising, a closed file)
        _logger.warning("batch %r: could not read all rows (%s)", name, exc, exc_info=True)
        tally.add(Problem(None, None, f"reading the rows failed ({type(exc).__name__})"))
    completeness = _percent(tally.filled, tally.required_cells)
    compliance = _percent(tally.checked - tally.failed, tally.checked)
    if tally.rows:
        raw = (
            (completeness + compliance) / 2
            - 100.0 * len(tally.error_rows) / tally.rows
            - 20.0 * tally.warning_rows / tally.rows
        )
    else:
        raw = 100.0 if not tally.error_count else 0.0
    score = round(min(100.0, max(0.0, raw)), 1)
    summary = tuple(
        f"{field}: {problem} ({count}x)" if field else f"{problem} ({count}x)"
        for (field, problem), count in tally.summary.most_common(SUMMARY_LIMIT)
    )
    return QualityResult(
        name=name,
        score=score,
        completeness=round(completeness, 2),
        compliance=round(compliance, 2),
        rows=tally.rows,
        error_count=tally.error_count,
        warning_count=tally.warning_count,
        errors=tuple(tally.errors),
        warnings=tuple(tally.warnings),
        error_rows=tuple(tally.error_rows),
        floor=floor,
        summary=summary,
    )


def _rows_of(rows: Any) -> Iterable[Any]:
    if rows is None:
        return ()
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        return rows.to_dict("records")
    if isinstance(rows, (str, bytes, Mapping)):
        raise TypeError(f"the batch is a {type(rows).__name__}, not a list of rows")
    return rows


def _tally_rows(rows: Iterable[Any], schema: Schema, tally: _Tally) -> None:
    fields = schema._compiled
    checks = tuple(schema.checks.items())
    for index, row in enumerate(rows):
        tally.rows += 1
        read = _reader(row)
        has_error = has_warning = False
        if read is None:
            tally.required_cells += schema._required
            tally.add(
                Problem(index, None, f"the row is a {type(row).__name__}, not a mapping", "error")
            )
            tally.error_rows.append(index)
            continue
        for field in fields:
            try:
                value = read(field.name)
            except Exception as exc:
                value, problem = _MISSING, f"cannot be read ({type(exc).__name__})"
            else:
                problem = None
            if field.required:
                tally.required_cells += 1
            if problem is None and _empty(value):
                if not field.required:
                    continue
                problem = "missing"
            elif problem is None:
                if field.required:
                    tally.filled += 1
                tally.checked += 1
                try:
                    problem = field.judge(value)
                except Exception as exc:  # a value whose __str__ or comparison raises
                    problem = f"cannot be checked ({type(exc).__name__})"
                if problem is not None and field.severity == "error":
                    tally.failed += 1
            if problem is not None:
                tally.add(Problem(index, field.name, problem, field.severity, value))
                if field.severity == "error":
                    has_error = True
                else:
                    has_warning = True
        for check_name, check in checks:
            tally.checked += 1
            try:
                outcome = check(row)
            except Exception as exc:
                outcome = f"the check raised {type(exc).__name__}"
            if outcome is None or outcome is True:
                continue
            tally.failed += 1
            has_error = True
            text = "failed" if outcome is False else str(outcome)
            tally.add(Problem(index, check_name, text, "error"))
        if has_error:
            tally.error_rows.append(index)
        if has_warning:
            tally.warning_rows += 1


def _reader(row: Any) -> Optional[Callable[[str], Any]]:
    if isinstance(row, Mapping):
        return lambda name: row.get(name, _MISSING)
    if row is None or isinstance(row, (str, bytes, bytearray, int, float, complex, set)):
        return None
    if isinstance(row, (list, tuple)) and not hasattr(row, "_fields"):
        return None
    return lambda name: getattr(row, name, _MISSING)


def _empty(value: Any) -> bool:
    if value is None or value is _MISSING:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ == "NaTType"  # pandas' missing timestamp


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 100.0


class _Field:
    """One field, compiled: ``judge(value)`` is the first problem of a present value, or None."""

    __slots__ = (
        "_allowed",
        "_convert",
        "_high",
        "_low",
        "_pattern",
        "name",
        "required",
        "severity",
    )

    def __init__(self, name: str, spec: FieldSpec) -> None:
        self.name = name
        self.required = spec.required
        self.severity = spec.severity
        kind = _type_name(spec.type)
        self._convert = _CONVERTERS.get(kind) if kind else None
        limit_of = _as_date if kind == "date" else _as_number
        self._low = limit_of(spec.min) if spec.min is not None else None
        self._high = limit_of(spec.max) if spec.max is not None else None
        if kind is None and (self._low is not None or self._high is not None):
            self._convert = _CONVERTERS["number"]  # untyped with limits: a number
        self._pattern = re.compile(spec.pattern) if spec.pattern is not None else None
        self._allowed = None
        if spec.allowed is not None:
            allowed = list(spec.allowed)
            try:
                self._allowed = (frozenset(allowed), _allowed_label(allowed))
            except TypeError:  # unhashable values: compare one by one
                self._allowed = (tuple(allowed), _allowed_label(allowed))

    def judge(self, value: Any) -> Optional[str]:
        converted = value
        if self._convert is not None:
            converted, problem = self._convert(value)
            if problem is not None:
                return problem
        if self._low is not None and converted < self._low:
            return f"under the minimum {_limit_label(self._low)}"
        if self._high is not None and converted > self._high:
            return f"over the maximum {_limit_label(self._high)}"
        if self._allowed is not None:
            choices, label = self._allowed
            if not (_member(value, choices) or _member(converted, choices)):
                return f"not one of {label}"
        if self._pattern is not None and self._pattern.fullmatch(str(value)) is None:
            return f"does not match {self._pattern.pattern}"
        return None


def _member(value: Any, choices: Any) -> bool:
    try:
        return value in choices
    except TypeError:  # an unhashable value against a frozenset
        return False


def _to_str(value: Any) -> tuple[Any, Optional[str]]:
    return (value, None) if isinstance(value, str) else (value, "not a string")


def _to_number(value: Any) -> tuple[Any, Optional[str]]:
    number = _as_number(value)
    return (number, None) if number is not None else (value, "not a number")


def _to_int(value: Any) -> tuple[Any, Optional[str]]:
    if isinstance(value, bool):
        return value, "not an integer"
    if isinstance(value, int):
        return value, None
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.match(text):
            return int(text.replace(",", "")), None
        return value, "not an integer"
    number = _as_number(value)
    if number is not None and number.is_integer():
        return int(number), None
    return value, "not an integer"


def _to_bool(value: Any) -> tuple[Any, Optional[str]]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int) and value in (0, 1):
        return bool(value), None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True, None
        if text in _FALSE:
            return False, None
    return value, "not true or false"


def _to_date(value: Any) -> tuple[Any, Optional[str]]:
    parsed = _as_date(value)
    return (parsed, None) if parsed is not None else (value, "not an ISO date (YYYY-MM-DD)")


def _to_datetime(value: Any) -> tuple[Any, Optional[str]]:
    if isinstance(value, datetime.datetime):
        return value, None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return datetime.datetime.fromisoformat(text), None
        except ValueError:
            pass
    return value, "not an ISO date-time"


_CONVERTERS: dict[str, Callable[[Any], tuple[Any, Optional[str]]]] = {
    "str": _to_str,
    "int": _to_int,
    "number": _to_number,
    "bool": _to_bool,
    "date": _to_date,
    "datetime": _to_datetime,
}


def _as_number(value: Any) -> Optional[float]:
    """Numbers, Decimals and numeric strings (``"1,520.00"``, ``"$12.50"``); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text[:1] and unicodedata.category(text[0]) == "Sc":  # a currency symbol
            text = text[1:].strip()
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _as_date(value: Any) -> Optional[datetime.date]:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _type_name(kind: Any) -> Optional[str]:
    if kind is None:
        return None
    if not isinstance(kind, str):
        return repr(kind)
    name = kind.strip().lower()
    return _TYPE_ALIASES.get(name, name)


def _limit_label(limit: Any) -> str:
    return f"{limit:g}" if isinstance(limit, float) else str(limit)


def _allowed_label(allowed: Sequence[Any]) -> str:
    shown = ", ".join(str(value) for value in allowed[:6])
    return shown + (f", ... ({len(allowed)} values)" if len(allowed) > 6 else "")


# -- definition -----------------------------------------------------------------------------

_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(FieldSpec))


def _field_spec(raw: Any) -> tuple[Optional[FieldSpec], list[str]]:
    if isinstance(raw, FieldSpec):
        spec = raw
    elif isinstance(raw, str):
        spec = FieldSpec(type=raw)
    elif isinstance(raw, Mapping):
        unknown = [key for key in raw if key not in _SPEC_FIELDS]
        if unknown:
            return None, [
                f"unknown key {key!r}{_did_you_mean(str(key), _SPEC_FIELDS)}: a field has "
                f"{', '.join(_SPEC_FIELDS)}"
                for key in unknown
            ]
        spec = FieldSpec(**raw)
    else:
        return None, [
            f'{raw!r} is not a field spec: give a type name ("number"), a table of '
            '{"type": ..., "min": ..., ...} or a FieldSpec'
        ]
    problems = spec.problems()
    return (None if problems else spec), problems


def _floor_problem(floor: Any) -> Optional[str]:
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor):
        return f"floor must be a number from 0 to 100, not {floor!r}"
    if not 0 <= floor <= 100:
        return f"floor {floor:g} is outside 0-100: scores run from 0 to 100 (0 never alerts)"
    return None


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_SCHEMA_KEYS = ("name", "fields", "floor", "impact")


def schemas_from_tables(
    tables: Any, source: str = "<schema>"
) -> tuple[dict[str, Schema], list[str]]:
    """Schemas from a TOML ``schema`` array of tables, and every problem (never raises).

    Each table has ``name`` (required, unique), ``fields`` (a table of field -> type name or
    inline table), and optionally ``floor`` and ``impact``.
    """
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return {}, [f"{source}: 'schema' must be an array of tables: write each as [[schema]]"]
    schemas: dict[str, Schema] = {}
    problems: list[str] = []
    for number, table in enumerate(tables, start=1):
        name = table.get("name")
        label = f"{source}: schema {name!r} (#{number})" if name else f"{source}: schema #{number}"
        unknown = [key for key in table if key not in _SCHEMA_KEYS]
        for key in unknown:
            problems.append(
                f"{label}: unknown key {key!r}{_did_you_mean(key, _SCHEMA_KEYS)}: a [[schema]] "
                f"has {', '.join(_SCHEMA_KEYS)}"
            )
        if not isinstance(name, str) or not name.strip():
            problems.append(f'{label}: missing name: name the batch, e.g. name = "billing_lines"')
            continue
        if name in schemas:
            problems.append(f"{label}: the name is already used by another schema: rename one")
        fields = table.get("fields")
        if not isinstance(fields, dict):
            problems.append(
                f"{label}: missing [schema.fields] table: list the fields, e.g. "
                'amount = { type = "number", min = 0 }'
            )
            continue
        if unknown:
            continue
        options = {key: table[key] for key in ("floor", "impact") if key in table}
        try:
            schemas[name] = Schema(fields, name=name, **options)
        except SchemaError as exc:
            for problem in exc.problems:
                # Schema() prefixes "schema 'name': "; the label already names the schema.
                if problem.startswith("schema "):
                    problem = problem.split(": ", 1)[1]
                problems.append(f"{label}: {problem}")
    return schemas, problems


def load_schemas(path: Any) -> dict[str, Schema]:
    """The ``[[schema]]`` tables of the TOML file at ``path`` (a rules file may hold them).

    Raises :class:`SchemaError` naming the file, each bad schema and field, and the fix.
    """
    from otel_sentry_biz.toml_file import TomlFileProblem, parse_toml, read_toml_text

    try:
        source, text = read_toml_text(path)
        document = parse_toml(text, source, tables="[[schema]]")
    except TomlFileProblem as exc:
        raise SchemaError([str(exc)]) from None
    if "schema" not in document:
        raise SchemaError([f"{source}: no schemas: add a [[schema]] table (see docs/rules.md)"])
    schemas, problems = schemas_from_tables(document["schema"], source)
    if problems:
        raise SchemaError(problems)
    return schemas


def load_schema(path: Any, name: Optional[str] = None) -> Schema:
    """The schema ``name`` of the file at ``path`` (or its only schema when ``name`` is None)."""
    schemas = load_schemas(path)
    if name is None:
        if len(schemas) == 1:
            return next(iter(schemas.values()))
        raise SchemaError(
            [f"{path}: it has {len(schemas)} schemas ({', '.join(schemas)}): name the one you want"]
        )
    if name not in schemas:
        hint = _did_you_mean(name, list(schemas))
        raise SchemaError(
            [f"{path}: no schema {name!r}{hint}: the file has {', '.join(schemas) or 'none'}"]
        )
    return schemas[name]


# -- recording ------------------------------------------------------------------------------


def _record(result: QualityResult, impact: Impact) -> QualityResult:
    try:
        with _recording_span(f"validate_batch {result.name}") as span:
            attributes = result.attributes()
            span.set_attributes(attributes)
            event = dict(attributes)
            if result.summary:
                event[QUALITY_PREFIX + "problems"] = result.summary
            span.add_event(QUALITY_EVENT, event)
            measurement.add_measurement(span, QUALITY_MEASUREMENT, result.score)
            if result.passed:
                return result
            risk = alerting.DEFAULT_RISK[impact]
            window_risk = process_risk().add(
                risk, impact=impact, category=Category.DATA_QUALITY, rule=QUALITY_RULE
            )
            bad = len(result.error_rows)
            message = (
                f"Data quality of {result.name} is {result.score:g}, under the floor of "
                f"{result.floor:g}: {bad} of {result.rows} rows with errors, completeness "
                f"{result.completeness:g}%, compliance {result.compliance:g}%"
            )
            # The batch is business context (a tag to search by), the rest are findings.
            with business_context(batch=result.name):
                violation(
                    QUALITY_RULE,
                    impact,
                    message,
                    category=Category.DATA_QUALITY,
                    group=result.name,
                    risk=risk,
                    score=result.score,
                    floor=result.floor,
                    completeness=result.completeness,
                    compliance=result.compliance,
                    row_count=result.rows,
                    error_rows=bad,
                    error_count=result.error_count,
                    warning_count=result.warning_count,
                    problems=result.summary,
                    alert_tier=alerting.DEFAULT_ALERT_TIERS[impact],
                    window_risk=window_risk,
                )
            return dataclasses.replace(result, window_risk=window_risk)
    except Exception:
        _logger.exception("could not record the quality of batch %r", result.name)
        return result


class _recording_span:
    """The current span when it records, else a short span of our own (made current)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._own: Any = None

    def __enter__(self) -> Any:
        span = trace.get_current_span()
        if span.is_recording():
            return span
        self._own = _tracer.start_as_current_span(self._name, record_exception=False)
        return self._own.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        if self._own is not None:
            self._own.__exit__(*exc_info)
