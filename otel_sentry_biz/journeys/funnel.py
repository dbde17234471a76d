"""Conversion funnels: how many of the sessions (or users) that enter reach each step.

>>> checkout = Funnel("checkout", ["cart", "address", "payment", "confirmed"])  # at import
>>> checkout.step(session_id, "payment")                                        # in a request
>>> checkout.snapshot().conversion                                              # 42.0 (percent)

A subject enters the funnel at the first step and has ``window`` seconds (24 h by default)
to reach the others; steps may be skipped, a step reached twice counts once. Subjects are
grouped in cohorts by the ``window``-long period they entered in, so a conversion never
counts a step against entries of another period and stays within 0-100 %. Counts live in
the shared :mod:`state store <otel_sentry_biz.journeys.state>`: every process using it adds
to the same funnel.

What each step emits:

- the OTel counter ``biz.funnel.step`` (attributes ``biz.funnel``, ``biz.funnel.step``), so a
  metrics backend can chart conversion as ``step / first step`` over any range;
- on the current span, the attributes ``biz.funnel`` and ``biz.funnel.step`` (Sentry tags
  ``funnel``, ``funnel.step``) and the measurement ``funnel_<name>_conversion``: the percent
  of this subject's cohort that has reached this step so far. On-call filters transactions by
  ``funnel.step`` and sees where a cohort stops converting, next to the errors and latency of
  that very step; on the last step it is the funnel's conversion.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from opentelemetry.metrics import MeterProvider

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.journeys import signals
from otel_sentry_biz.journeys.once import FirstSeen
from otel_sentry_biz.journeys.state import default_store, key_part, never_raises
from otel_sentry_biz.rules.state import StateStore

_logger = logging.getLogger("otel_sentry_biz.journeys")

DEFAULT_WINDOW = 24 * 3600.0
#: A funnel name becomes part of a Sentry measurement name (lower case, at most 64 characters).
_NAME = re.compile(r"^[a-z0-9_]{1,46}$")
MAX_SUBJECT_LENGTH = 128


@dataclass(frozen=True)
class StepCount:
    """One step of a :class:`FunnelSnapshot`."""

    step: str
    #: Subjects of the cohort that reached this step.
    reached: int
    #: Percent of the cohort's entries that reached this step.
    conversion: float
    #: Percent of those who reached the previous step that reached this one (100 for the
    #: first step): where this is low, the previous step loses people.
    from_previous: float


@dataclass(frozen=True)
class FunnelSnapshot:
    """Counts of one cohort: the subjects that entered between ``cohort_start`` and
    ``cohort_start + window``."""

    funnel: str
    cohort_start: float
    entered: int
    steps: tuple[StepCount, ...]

    @property
    def converted(self) -> int:
        """Subjects that reached the last step."""
        return self.steps[-1].reached

    @property
    def conversion(self) -> float:
        """Percent of entries that reached the last step."""
        return self.steps[-1].conversion


class Funnel:
    """A funnel declared once (at import or start-up) and fed from any request or process.

    ``store`` None uses the shared default store; ``meter_provider`` None the provider of
    :func:`~otel_sentry_biz.journeys.signals.use_meter_provider`, else the global one;
    ``clock`` is for tests. A bad name, steps or window raise
    :class:`~otel_sentry_biz.config.ConfigError` naming the fix; :meth:`step` never raises.
    """

    def __init__(
        self,
        name: str,
        steps: Sequence[str],
        *,
        window: float = DEFAULT_WINDOW,
        store: Optional[StateStore] = None,
        meter_provider: Optional[MeterProvider] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"Funnel name {name!r}: use 1-46 characters a-z, 0-9 or '_' (e.g. 'checkout'); "
                "it names the Sentry measurement funnel_<name>_conversion"
            )
        if isinstance(steps, str) or not steps or not all(isinstance(s, str) and s for s in steps):
            raise ConfigError(
                f"Funnel {name!r} steps={steps!r}: use a list of step names, "
                "e.g. ['cart', 'payment', 'confirmed']"
            )
        if len(set(steps)) != len(steps):
            raise ConfigError(f"Funnel {name!r} steps={list(steps)!r}: name each step once")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
            raise ConfigError(
                f"Funnel {name!r} window={window!r}: use a positive number of seconds"
            )
        self.name = name
        self.steps: tuple[str, ...] = tuple(steps)
        self.window = float(window)
        self.measurement = f"funnel_{name}_conversion"
        self._index = {step: index for index, step in enumerate(self.steps)}
        self._store = store
        self._signals = signals.Signals(meter_provider) if meter_provider is not None else None
        self._clock = clock
        self._unknown = FirstSeen()
        #: Steps not recorded because the state store could not answer.
        self.dropped = 0

    @never_raises("funnel step")
    def step(self, subject: Union[str, int], step: str, **attrs: Any) -> None:
        """Record that ``subject`` (a session or user id) reached ``step``.

        ``attrs`` go on the span event as ``biz.<key>``. A step not declared, or a later step
        of a subject that has not entered (in the last ``window``), is logged and not counted.
        """
        index = self._index.get(step)
        subject_key = key_part(subject, MAX_SUBJECT_LENGTH)
        if index is None or subject_key is None:
            if self._unknown.first((repr(step)[:200], subject_key is None)):
                _logger.warning(
                    "funnel %s: %s; not counted",
                    self.name,
                    f"step {step!r} is not one of {list(self.steps)}"
                    if index is None
                    else f"subject must be a string of 1-{MAX_SUBJECT_LENGTH} characters",
                )
            return
        store = self._state()
        cohort = self._cohort(store, subject_key, entering=index == 0)
        if cohort is None:
            _logger.debug(
                "funnel %s: %r reached %r without entering (in the last window); not counted",
                self.name,
                subject_key,
                step,
            )
            return
        keep = 2 * self.window  # entries of a period convert until the end of the next one
        tags = {signals.FUNNEL: self.name, signals.FUNNEL_STEP: step}
        if not store.add_once(f"biz.funnel:{self.name}:{cohort}:{subject_key}:{index}", keep):
            signals.mark_current_span(signals.FUNNEL_STEPPED, tags, attrs)  # reached before
            return
        amounts = {"0": 0.0, str(index): 1.0}
        counts = store.incr(f"biz.funnel:{self.name}:{cohort}", amounts, keep)
        conversion = _percent(counts[str(index)], counts["0"])
        self._emit().add(signals.FUNNEL_STEPPED, tags)
        signals.mark_current_span(
            signals.FUNNEL_STEPPED, tags, attrs, [(self.measurement, conversion, "percent")]
        )

    def snapshot(self, at: Optional[float] = None) -> FunnelSnapshot:
        """The counts of the cohort that entered in the period holding ``at`` (default now).

        The current cohort is still converting; the previous one
        (``at=time.time() - funnel.window``) is complete. A query, not a recording: raises
        :class:`~otel_sentry_biz.rules.state.StoreUnavailable` when the store cannot
        answer, rather than report zeros.
        """
        moment = self._clock() if at is None else at
        cohort = int(moment // self.window)
        amounts = {str(index): 0.0 for index in range(len(self.steps))}
        counts = self._state().incr(f"biz.funnel:{self.name}:{cohort}", amounts, 2 * self.window)
        entered = int(counts["0"])
        steps = []
        previous = entered
        for index, step in enumerate(self.steps):
            reached = int(counts[str(index)])
            steps.append(
                StepCount(step, reached, _percent(reached, entered), _percent(reached, previous))
            )
            previous = reached
        return FunnelSnapshot(self.name, cohort * self.window, entered, tuple(steps))

    def _cohort(self, store: StateStore, subject: str, *, entering: bool) -> Optional[str]:
        """The cohort of ``subject``'s entry in the last ``window``; entering makes one when
        there is none. The store's expiry follows its own clock, so age is checked here too."""
        key = f"biz.funnel:{self.name}:entry:{subject}"
        now = self._clock()
        mine = f"{int(now // self.window)}:{now!r}"
        held = store.put_if_absent(key, mine, self.window) if entering else store.get(key)
        if held is None:
            return None
        cohort, _, since = held.partition(":")
        try:
            live = now - float(since) < self.window
        except ValueError:
            live = False
        if live:
            return cohort
        if not entering:
            return None
        store.delete(key)  # entering again after the window: a new cohort
        return store.put_if_absent(key, mine, self.window).partition(":")[0]

    def _state(self) -> StateStore:
        return self._store if self._store is not None else default_store()

    def _emit(self) -> signals.Signals:
        return self._signals if self._signals is not None else signals.shared()

    def __repr__(self) -> str:
        return f"Funnel({self.name!r}, {list(self.steps)!r}, window={self.window:g})"


def _percent(part: float, whole: float) -> float:
    if whole <= 0:
        return 0.0
    return round(min(100.0, 100.0 * part / whole), 2)
