"""What every rule declares, whatever its kind, and how a declaration is validated.

A rule is data: a frozen dataclass per kind (``Threshold``, ``Aggregate``, ...) built from a
TOML table or written in Python. All of them share :class:`RuleSpec`'s fields: a name, an
impact and category, what the rule applies to (span name / op globs, required attributes, span
status), a message template, an optional fingerprint and group key, a risk delta.

Validation is one pass that collects *every* problem (so a rules file is fixed in one go), each
phrased as "what is wrong: what to write instead".
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import string
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Optional, Protocol, Union

from otel_sentry_biz.impact import Category, Impact

#: A length of time: seconds, or a number with a unit (``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``).
Duration = Union[float, str]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_STATUSES = ("error", "ok", "unset")


#: Field metadata of a field the rule cannot do without: ``field(default=None,
#: metadata=REQUIRED)``. Python 3.9 dataclasses have no keyword-only fields, so a kind's required
#: fields cannot follow the defaulted common ones; they default to None and validation reports
#: them as missing.
REQUIRED: Mapping[str, bool] = MappingProxyType({"required": True})


def parse_duration(value: Duration) -> float:
    """``"1d"`` -> 86400.0; raise ``ValueError`` naming the accepted forms."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise ValueError(
                f"bad duration {value!r}: use seconds (90) or a number with a unit "
                "(500ms, 30s, 5m, 1h, 1d, 1w)"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"bad duration {value!r}: it must be more than zero")
    return seconds


def duration_label(seconds: float) -> str:
    """86400.0 -> ``"1d"``: how a window reads in a message."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def as_tuple(value: Union[str, Sequence[str], None]) -> tuple[str, ...]:
    """A field that takes one name or a list of names, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def template_problem(template: str) -> Optional[str]:
    """Why ``template`` is not a valid ``str.format`` template, or None when it is."""
    try:
        for _literal, field_name, _spec, _conversion in string.Formatter().parse(template):
            if field_name == "":
                return f"{template!r} has an empty {{}}: name the value, e.g. {{amount}}"
    except ValueError as exc:
        return f"{template!r} is not a valid template ({exc}): write literal braces as {{{{ }}}}"
    return None


@dataclass(frozen=True)
class Finding:
    """What a rule's check found on one span, before the engine makes it a Violation.

    ``values`` fill the message template and travel as violation data; ``group`` is the group
    key when the rule has no ``group_by`` of its own (e.g. a duplicate's key tuple).
    """

    values: Mapping[str, Any]
    group: Optional[str] = None


class SpanFacts(Protocol):
    """The view of a span that checks read (implemented by ``span_view.SpanView``)."""

    name: str
    time: float
    failed: bool

    def get(self, field: str) -> Any: ...

    def key(self, fields: Sequence[str]) -> Optional[str]: ...


class Check(Protocol):
    """A compiled rule's judgement of one span; called only for spans the rule applies to."""

    def check(self, span: SpanFacts) -> Sequence[Finding]: ...


@dataclass(frozen=True)
class BuildContext:
    """What a spec needs to compile: shared state (for windowed kinds) and the clock."""

    store: Any  # a StateStore, or None when no rule of the set keeps state
    clock: Callable[[], float]


@dataclass(frozen=True)
class RuleSpec:
    """The fields every rule kind has. Subclass it (and register it) to add a kind.

    >>> Threshold(name="wr_limit", attribute="amount", above=15_000, impact="HIGH",
    ...           span="process_work_request", group_by="work_request")
    """

    #: The ``kind`` a TOML table names to get this class.
    kind: ClassVar[str] = ""
    #: Whether compiled rules of this kind read or write the state store.
    stateful: ClassVar[bool] = False
    default_category: ClassVar[Category] = Category.BUSINESS_LOGIC
    default_message: ClassVar[str] = "{rule} violated"

    name: str = dataclasses.field(default=None, metadata=REQUIRED)
    impact: Union[Impact, str] = Impact.MEDIUM
    category: Optional[Union[Category, str]] = None
    #: ``str.format`` template over the span's attributes and the rule's computed values.
    message: Optional[str] = None
    #: Sentry fingerprint parts (templates); default: rule name and group key.
    fingerprint: Optional[Sequence[str]] = None
    #: Attributes whose values form the group key (one Sentry issue per group).
    group_by: Union[str, Sequence[str]] = ()
    #: Span-name globs (``"process_*"``); empty: any span.
    span: Union[str, Sequence[str]] = ()
    #: Globs on the span's ``sentry.op`` attribute; empty: any op.
    op: Union[str, Sequence[str]] = ()
    #: Attributes that must be present (``"amount"`` also matches ``biz.amount``).
    requires: Union[str, Sequence[str]] = ()
    #: Only spans with this status: ``"error"``, ``"ok"`` or ``"unset"``.
    status: Optional[str] = None
    #: Risk added per violation; default by impact (see ``alerting.DEFAULT_RISK``).
    risk: Optional[float] = None
    #: Alert tier for this rule's violations; default by impact.
    alert_tier: Optional[str] = None

    # -- what the engine reads --------------------------------------------------------

    def needs(self) -> tuple[str, ...]:
        """Attributes the check reads; a span without them is skipped (and never indexed)."""
        return ()

    def build(self, context: BuildContext) -> Check:
        """Compile this (valid) spec into its check."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")

    # -- validation -------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Everything wrong with this spec, each with its fix; empty when it is valid."""
        found = _type_problems(self)
        if found:
            return found  # the checks below assume the types are right
        if not str(self.name).strip():
            found.append("the name is empty: give the rule a short unique name")
        try:
            Impact.parse(self.impact)
        except ValueError as exc:
            found.append(str(exc))
        if self.category is not None:
            try:
                Category.parse(self.category)
            except ValueError as exc:
                found.append(str(exc))
        if self.status is not None and self.status not in _STATUSES:
            found.append(f"unknown status {self.status!r}: use one of {', '.join(_STATUSES)}")
        if self.risk is not None and not (math.isfinite(self.risk) and self.risk >= 0):
            found.append(f"bad risk {self.risk!r}: use a number >= 0")
        if self.alert_tier is not None and not self.alert_tier.strip():
            found.append("alert_tier is empty: name a tier, e.g. immediate")
        for template in (self.message, *as_tuple(self.fingerprint)):
            problem = template_problem(template) if template is not None else None
            if problem:
                found.append(problem)
        if self.fingerprint is not None and not as_tuple(self.fingerprint):
            found.append("the fingerprint is empty: remove it or list at least one part")
        found.extend(self.kind_problems())
        return found

    def kind_problems(self) -> list[str]:
        """Problems specific to the kind; called once the field types are right."""
        return []


def duration_problem(name: str, value: Duration) -> list[str]:
    """``[]`` when ``value`` is a valid duration, else the problem naming field ``name``."""
    try:
        parse_duration(value)
    except ValueError as exc:
        return [f"{name}: {exc}"]
    return []


def _type_problems(spec: RuleSpec) -> list[str]:
    hints = typing.get_type_hints(type(spec))
    found: list[str] = []
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        if value is None:
            if item.metadata.get("required"):
                found.append(f"missing field {item.name!r}: {_FIELD_FIXES.get(item.name, '')}")
            continue
        expected = _expected(value, hints[item.name])
        if expected is not None:
            found.append(f"{item.name} must be {expected}, not {value!r}")
    return [problem.rstrip(": ") for problem in found]


#: How to fill a required field, for the "missing field" message.
_FIELD_FIXES = {
    "name": "give the rule a short unique name",
    "attribute": 'name the attribute to check, e.g. attribute = "amount"',
    "window": 'set the window, e.g. window = "1d"',
    "key": 'list the attributes forming the key, e.g. key = ["work_request"]',
    "value": 'name the attribute that must stay the same, e.g. value = "foreman"',
    "check": "choose future, weekend or after_hours",
}


def _expected(value: Any, hint: Any) -> Optional[str]:
    """None when ``value`` fits type ``hint``, else a description of what was expected."""
    origin = typing.get_origin(hint)
    if origin is Union:
        arms = [arm for arm in typing.get_args(hint) if arm is not type(None)]
        results = [_expected(value, arm) for arm in arms]
        if any(result is None for result in results):
            return None
        return " or ".join(dict.fromkeys(r for r in results if r))
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is str or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return None if isinstance(value, (str, enum.Enum)) else "a string"
    if origin in (Sequence, tuple, list):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return None if ok else "a list of strings"
    if origin is Mapping:
        _key_hint, value_hint = typing.get_args(hint)
        ok = isinstance(value, Mapping) and all(
            isinstance(k, str) and _expected(v, value_hint) is None for k, v in value.items()
        )
        return None if ok else f"a table whose values are {_expected(object(), value_hint)}"
    return None
