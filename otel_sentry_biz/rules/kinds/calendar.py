"""Calendar: future dates, weekend work, after-hours activity, in a configured time zone.

>>> Calendar(name="future_work_date", check="future", attribute="work_date", impact="CRITICAL")
>>> Calendar(name="after_hours_change", check="after_hours", hours="07:00-18:00",
...          timezone="America/Chicago", op="db.*")

``attribute`` names a date (``2025-03-01``), a date-time (ISO 8601; naive ones are read in
``timezone``) or epoch seconds; without it the span's own end time is judged (after-hours and
weekend activity). Time zones are IANA names resolved with :mod:`zoneinfo`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Union

from otel_sentry_biz.rules.span_view import as_number
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

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python 3.8 is not supported; keep the error clear
    zoneinfo = None  # type: ignore[assignment]

CHECKS = ("future", "weekend", "after_hours")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Calendar(RuleSpec):
    """A date or time in the future, on a weekend day, or outside working hours."""

    kind: ClassVar[str] = "calendar"
    default_message: ClassVar[str] = "{subject} {when} is {problem}"

    check: Optional[str] = field(default=None, metadata=REQUIRED)
    attribute: Optional[str] = None
    timezone: str = "UTC"
    #: Working hours, local time; ``"22:00-06:00"`` crosses midnight (a night shift).
    hours: str = "07:00-18:00"
    weekend: Union[str, Sequence[str]] = ("sat", "sun")
    #: ``future`` only: how far ahead still counts as now (clock skew, time zones).
    tolerance: Optional[Duration] = None

    def needs(self) -> tuple[str, ...]:
        return (self.attribute,) if self.attribute else ()

    def kind_problems(self) -> list[str]:
        found = []
        if self.check not in CHECKS:
            found.append(f"unknown check {self.check!r}: use one of {', '.join(CHECKS)}")
        if self.check == "future" and not self.attribute:
            found.append(
                "check future needs the date attribute to judge (a span's own time is never "
                'in the future), e.g. attribute = "work_date"'
            )
        try:
            _zone(self.timezone)
        except ValueError as exc:
            found.append(str(exc))
        try:
            _hours(self.hours)
        except ValueError as exc:
            found.append(str(exc))
        for day in as_tuple(self.weekend):
            if day[:3].lower() not in DAYS:
                found.append(f"unknown weekend day {day!r}: use {', '.join(DAYS)}")
        if self.tolerance is not None:
            found.extend(duration_problem("tolerance", self.tolerance))
        return found

    def build(self, context: BuildContext) -> CalendarCheck:
        return CalendarCheck(self, context.clock)


class CalendarCheck:
    def __init__(self, spec: Calendar, clock: Callable[[], float]) -> None:
        self._check = spec.check
        self._attribute = spec.attribute
        self._zone = _zone(spec.timezone)
        self._start, self._end = _hours(spec.hours)
        self._hours = spec.hours
        self._weekend = frozenset(DAYS.index(d[:3].lower()) for d in as_tuple(spec.weekend))
        self._tolerance = parse_duration(spec.tolerance) if spec.tolerance is not None else 0.0
        self._clock = clock

    def check(self, span: SpanFacts) -> Sequence[Finding]:
        if self._attribute is None:
            moment: Any = datetime.datetime.fromtimestamp(span.time, self._zone)
        else:
            moment = _moment(span.get(self._attribute), self._zone)
            if moment is None:
                return ()
        problem = self._problem(moment)
        if problem is None:
            return ()
        values = {
            "subject": self._attribute or "activity at",
            "when": moment.isoformat(),
            "problem": problem,
            "weekday": moment.strftime("%A"),
            "date": moment.isoformat()[:10],
            "timezone": str(self._zone),
        }
        return (Finding(values),)

    def _problem(self, moment: Any) -> Optional[str]:
        is_datetime = isinstance(moment, datetime.datetime)
        if self._check == "future":
            now = datetime.datetime.fromtimestamp(self._clock() + self._tolerance, self._zone)
            later = moment > now if is_datetime else moment > now.date()
            return "in the future" if later else None
        if self._check == "weekend":
            return f"on a {moment.strftime('%A')}" if moment.weekday() in self._weekend else None
        if not is_datetime:
            return None  # a bare date has no time of day to judge
        local = moment.timetz().replace(tzinfo=None)
        if self._start <= self._end:
            working = self._start <= local < self._end
        else:
            working = local >= self._start or local < self._end
        if working:
            return None
        return f"after hours ({local:%H:%M} {self._zone}, working hours {self._hours})"


def _zone(name: str) -> datetime.tzinfo:
    if name.upper() == "UTC":
        return datetime.timezone.utc
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or "
            "America/Chicago (on Windows, pip install tzdata)"
        ) from None


def _hours(text: str) -> tuple[datetime.time, datetime.time]:
    match = _HOURS.match(text)
    try:
        if match is None:
            raise ValueError
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        return datetime.time(h1, m1), datetime.time(h2 % 24, m2)
    except ValueError:
        raise ValueError(
            f"bad hours {text!r}: write working hours as HH:MM-HH:MM, e.g. 07:00-18:00"
        ) from None


def _moment(value: Any, zone: datetime.tzinfo) -> Any:
    """A date or an aware datetime in ``zone`` from an attribute value, or None."""
    try:
        return _parse_moment(value, zone)
    except (ValueError, OverflowError, OSError):
        return None  # out of datetime's range: not a date this rule can judge


def _parse_moment(value: Any, zone: datetime.tzinfo) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.date.fromisoformat(text)
            parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=zone)
        return parsed.astimezone(zone)
    seconds = as_number(value)
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, zone)
