"""User journeys: a multi-step process started in one request and ended in another.

>>> journey_id = journey_start("signup", user=user.id)        # POST /signup
>>> journey_step(journey_id, "email_verified")                # GET /verify?j=...
>>> journey_complete(journey_id)                              # POST /profile

A journey's record (name, start, deadline, user) and its progress (steps taken, ended) live
in the shared :mod:`state store <otel_sentry_biz.journeys.state>`, so any process that uses
the same store finds it. Each call marks the current span (the Sentry transaction of that
request is tagged ``journey``, ``journey.id``, ``journey.step``) and counts in the OTel
metrics ``biz.journey.*``; the end adds the measurements ``journey_duration`` and
``journey_steps`` to the transaction.

A journey has ``ttl`` seconds (24 h by default) from its start to end. After that it counts
as abandoned (reason ``expired``) when it is next touched, or when the process that started
it sweeps (every minute, piggy-backed on journey calls, or :func:`sweep_journeys`). It ends
exactly once across processes: a second ``journey_complete`` is ignored.

Nothing here raises into the app: an unknown id is logged once and ignored, a state store
that cannot answer is counted in ``JourneyTracker.dropped``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from opentelemetry.metrics import MeterProvider

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.journeys import signals
from otel_sentry_biz.journeys.once import FirstSeen
from otel_sentry_biz.journeys.state import default_store, key_part, never_raises
from otel_sentry_biz.rules.state import StateStore

_logger = logging.getLogger("otel_sentry_biz.journeys")

DEFAULT_TTL = 24 * 3600.0
#: Longer ids are refused: an id may come from a client, and it is part of store keys.
MAX_ID_LENGTH = 128
#: Records outlive their deadline by one more ttl, so a late touch still finds the journey
#: and counts it as expired rather than unknown.
_KEEP_FACTOR = 2.0
#: Seconds between two automatic sweeps, and journeys one automatic sweep may expire (it runs
#: inside a request; sweep_journeys() has no such bound).
_SWEEP_INTERVAL = 60.0
_SWEEP_BATCH = 100
#: Journeys started here and not yet ended, remembered for the sweep.
_MAX_PENDING = 100_000

OUTCOME_COMPLETED = "completed"
OUTCOME_ABANDONED = "abandoned"
OUTCOME_EXPIRED = "expired"
REASON_EXPIRED = "expired"
REASON_UNSPECIFIED = "unspecified"

JourneyId = Union[str, int]


@dataclass(frozen=True)
class _Journey:
    id: str
    name: str
    started: float
    deadline: float
    user: Optional[str]
    # Names this incarnation of the id: its progress is kept under it, so a journey started
    # again with the same id never inherits the steps or the end of the previous one.
    nonce: str

    def to_json(self) -> str:
        return json.dumps(
            {"n": self.name, "s": self.started, "d": self.deadline, "u": self.user, "k": self.nonce}
        )

    @classmethod
    def from_json(cls, journey_id: str, text: str) -> Optional[_Journey]:
        try:
            data = json.loads(text)
            return cls(
                journey_id, str(data["n"]), float(data["s"]), float(data["d"]), data["u"], data["k"]
            )
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def record_key(self) -> str:
        return _record_key(self.id)

    @property
    def progress_key(self) -> str:
        # Not under the id: an id is chosen by the app (or its client), the nonce by us.
        return f"biz.journey.progress:{self.nonce}"

    def tags(self, **more: Union[str, int]) -> dict[str, Union[str, int]]:
        return {signals.JOURNEY: self.name, signals.JOURNEY_ID: self.id, **more}


def _record_key(journey_id: str) -> str:
    return f"biz.journey:{journey_id}"


class JourneyTracker:
    """Starts, advances and ends journeys kept in ``store`` (None: the shared default store).

    >>> tracker = JourneyTracker(store=open_store("sqlite:////var/lib/app/state.db"))
    >>> tracker.complete(tracker.start("checkout"))

    ``meter_provider`` None sends metrics to the provider of
    :func:`~otel_sentry_biz.journeys.signals.use_meter_provider`, else the global one.
    ``clock`` is for tests. Safe to share between threads; every method may run in a request
    and none raises into it.
    """

    def __init__(
        self,
        store: Optional[StateStore] = None,
        *,
        ttl: float = DEFAULT_TTL,
        meter_provider: Optional[MeterProvider] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ConfigError(f"JourneyTracker ttl={ttl!r}: use a positive number of seconds")
        self._store = store
        self._ttl = float(ttl)
        self._signals = signals.Signals(meter_provider) if meter_provider is not None else None
        self._clock = clock
        self._unknown = FirstSeen()
        self._pending: OrderedDict[str, _Journey] = OrderedDict()
        self._lock = threading.Lock()
        self._next_sweep = clock() + _SWEEP_INTERVAL
        #: Calls not recorded because the state store could not answer.
        self.dropped = 0
        #: Journeys forgotten by the sweep because more than 100,000 were open here.
        self.unswept = 0

    # -- the four verbs ---------------------------------------------------------------------

    def start(
        self,
        name: str,
        *,
        journey_id: Optional[JourneyId] = None,
        user: Optional[JourneyId] = None,
        **attrs: Any,
    ) -> str:
        """Start journey ``name``; return its id, to carry to the requests that continue it.

        ``journey_id`` lets the app use its own (a cart or order id); starting an id that is
        already running keeps the running journey (a retried request does not restart it),
        while an id whose journey ended or expired starts afresh. ``attrs`` go on the span
        event as ``biz.<key>``.
        """
        checked = key_part(journey_id, MAX_ID_LENGTH) if journey_id is not None else None
        if checked is None:
            if journey_id is not None:
                _logger.error(
                    "journey_start(%r): journey_id must be a string of 1-%d characters; "
                    "using a generated id",
                    name,
                    MAX_ID_LENGTH,
                )
            checked = uuid.uuid4().hex
        self._start(name, checked, user, attrs)
        return checked

    @never_raises("journey step")
    def step(self, journey_id: JourneyId, step: str, **attrs: Any) -> None:
        """Record that the journey reached ``step`` (its n-th step: measurement
        ``journey_step`` = n)."""
        journey = self._live(journey_id, f"step {step!r}")
        if journey is None:
            return
        step = str(step)
        progress = self._state().incr(journey.progress_key, {"steps": 1, "ended": 0}, self._keep)
        if progress["ended"] >= 1:
            _logger.debug("journey %s: step %r after its end is ignored", journey.id, step)
            return
        index = int(progress["steps"])
        self._emit().add(
            signals.JOURNEY_STEPPED, {signals.JOURNEY: journey.name, signals.JOURNEY_STEP: step}
        )
        signals.mark_current_span(
            signals.JOURNEY_STEPPED,
            journey.tags(**{signals.JOURNEY_STEP: step}),
            _details(journey, attrs),
            [("journey_step", index, "none")],
        )

    def complete(self, journey_id: JourneyId, **attrs: Any) -> None:
        """End the journey successfully (measurements ``journey_duration``, ``journey_steps``)."""
        self._end(journey_id, OUTCOME_COMPLETED, None, attrs)

    def abandon(self, journey_id: JourneyId, reason: Optional[str] = None, **attrs: Any) -> None:
        """End the journey unsuccessfully. ``reason`` is a short code (``payment_declined``),
        a metric attribute: not a message, never an id."""
        self._end(journey_id, OUTCOME_ABANDONED, reason, attrs)

    def sweep(self, limit: Optional[int] = None) -> int:
        """Count journeys started here whose time ran out as abandoned; return how many.

        Journeys that another process ended are skipped (each ends once). Runs by itself
        every minute on journey calls; call it from a periodic job where journeys are rare.
        """
        now = self._clock()
        due = []
        with self._lock:
            self._next_sweep = now + _SWEEP_INTERVAL
            while self._pending and (limit is None or len(due) < limit):
                journey = next(iter(self._pending.values()))
                if journey.deadline > now:
                    break  # started in order with one ttl: the rest are later still
                due.append(self._pending.popitem(last=False)[1])
        expired = 0
        for done, journey in enumerate(due):
            try:
                expired += self._expire(journey, touched=False)
            except Exception as exc:  # the store is down: the next sweep tries these again
                with self._lock:
                    for later in reversed(due[done:]):
                        self._pending[later.id] = later
                        self._pending.move_to_end(later.id, last=False)
                _logger.debug("journey sweep stopped: %s", exc)
                break
        return expired

    # -- internals --------------------------------------------------------------------------

    @property
    def _keep(self) -> float:
        return self._ttl * _KEEP_FACTOR

    def _state(self) -> StateStore:
        return self._store if self._store is not None else default_store()

    def _emit(self) -> signals.Signals:
        return self._signals if self._signals is not None else signals.shared()

    @never_raises("journey start")
    def _start(self, name: Any, journey_id: str, user: Any, attrs: Any) -> None:
        self._maybe_sweep()
        now = self._clock()
        name, user = str(name), None if user is None else str(user)
        journey = _Journey(journey_id, name, now, now + self._ttl, user, uuid.uuid4().hex)
        store = self._state()
        text = journey.to_json()
        held = store.put_if_absent(journey.record_key, text, self._keep)
        if held != text:
            existing = _Journey.from_json(journey_id, held)
            if existing is not None and self._running(existing, now):
                _logger.debug("journey %s is already running: the start is ignored", journey_id)
                signals.mark_current_span(signals.JOURNEY_STARTED, existing.tags())
                return
            store.delete(journey.record_key)
            if store.put_if_absent(journey.record_key, text, self._keep) != text:
                return  # another process restarted it at the same moment: theirs stands
        with self._lock:
            self._pending[journey_id] = journey
            self._pending.move_to_end(journey_id)
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
                self.unswept += 1
        self._emit().add(signals.JOURNEY_STARTED, {signals.JOURNEY: name})
        signals.mark_current_span(signals.JOURNEY_STARTED, journey.tags(), _details(journey, attrs))

    def _running(self, journey: _Journey, now: float) -> bool:
        """Whether ``journey`` may go on; one found out of time is expired on the way."""
        if now >= journey.deadline:
            self._expire(journey, touched=False)
            return False
        ended = self._state().incr(journey.progress_key, {"ended": 0}, self._keep)["ended"]
        return ended < 1

    @never_raises("journey end")
    def _end(self, journey_id: JourneyId, outcome: str, reason: Optional[str], attrs: Any) -> None:
        journey = self._live(journey_id, outcome)
        if journey is None:
            return
        progress = self._state().incr(journey.progress_key, {"ended": 1, "steps": 0}, self._keep)
        if progress["ended"] != 1:
            _logger.debug("journey %s has already ended: %s is ignored", journey.id, outcome)
            return
        self._forget(journey)
        duration = max(0.0, self._clock() - journey.started)
        metric = {signals.JOURNEY: journey.name}
        tags = journey.tags(**{signals.JOURNEY_OUTCOME: outcome})
        if outcome == OUTCOME_ABANDONED:
            reason_code = str(reason) if reason is not None else REASON_UNSPECIFIED
            tags[signals.JOURNEY_REASON] = reason_code
            self._emit().add(
                signals.JOURNEY_ABANDONED, {**metric, signals.JOURNEY_REASON: reason_code}
            )
        else:
            self._emit().add(signals.JOURNEY_COMPLETED, metric)
        self._emit().record(
            signals.JOURNEY_DURATION, duration, {**metric, signals.JOURNEY_OUTCOME: outcome}
        )
        signals.mark_current_span(
            signals.JOURNEY_COMPLETED
            if outcome == OUTCOME_COMPLETED
            else signals.JOURNEY_ABANDONED,
            tags,
            _details(journey, attrs),
            [
                # Sentry's own durations (web vitals, spans) are in milliseconds.
                ("journey_duration", duration * 1000.0, "millisecond"),
                ("journey_steps", progress["steps"], "none"),
            ],
        )

    def _live(self, journey_id: JourneyId, action: str) -> Optional[_Journey]:
        """The journey ``journey_id`` if it may go on; None (logged) when unknown or expired."""
        self._maybe_sweep()
        checked = key_part(journey_id, MAX_ID_LENGTH)
        text = self._state().get(_record_key(checked)) if checked is not None else None
        journey = _Journey.from_json(checked, text) if checked and text is not None else None
        if journey is None:
            if self._unknown.first(repr(journey_id)[:200]):
                _logger.warning(
                    "journey %r is unknown (never started, expired long ago, or kept in another "
                    "state store): %s ignored; journeys shared by processes need "
                    "OTEL_SENTRY_BIZ_RULES_STATE=sqlite:////path or redis://",
                    journey_id,
                    action,
                )
            return None
        if self._clock() >= journey.deadline:
            self._expire(journey, touched=True)
            return None
        return journey

    def _expire(self, journey: _Journey, *, touched: bool) -> bool:
        """End ``journey`` as abandoned (expired) unless it has ended; True when this did."""
        store = self._state()
        progress = store.incr(journey.progress_key, {"ended": 1, "expired": 0}, self._keep)
        self._forget(journey)
        first = progress["ended"] == 1
        if first:
            store.incr(journey.progress_key, {"expired": 1}, self._keep)
            _logger.info("journey %s (%s) expired before it ended", journey.id, journey.name)
            self._emit().add(
                signals.JOURNEY_ABANDONED,
                {signals.JOURNEY: journey.name, signals.JOURNEY_REASON: REASON_EXPIRED},
            )
        if touched and (first or progress["expired"] >= 1):
            # The request that came too late is tagged, whichever process counted the expiry
            # (but not one touching a journey that was completed or abandoned in time).
            signals.mark_current_span(
                signals.JOURNEY_ABANDONED,
                journey.tags(
                    **{
                        signals.JOURNEY_OUTCOME: OUTCOME_EXPIRED,
                        signals.JOURNEY_REASON: REASON_EXPIRED,
                    }
                ),
            )
        return first

    def _forget(self, journey: _Journey) -> None:
        """Drop ``journey`` from the sweep's list (not a newer start under the same id)."""
        with self._lock:
            pending = self._pending.get(journey.id)
            if pending is not None and pending.nonce == journey.nonce:
                del self._pending[journey.id]

    def _maybe_sweep(self) -> None:
        if self._clock() >= self._next_sweep:
            self.sweep(limit=_SWEEP_BATCH)


def _details(journey: _Journey, attrs: Any) -> dict[str, Any]:
    details = dict(attrs)
    if journey.user is not None:
        details["journey.user"] = journey.user
    return details
