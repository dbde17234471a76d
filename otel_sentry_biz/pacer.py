"""Pacer: keep our background threads from taking the interpreter away from a busy app.

In CPython only one thread runs Python code at a time. Converting and sending spans costs
more CPU than creating them, so a background thread that simply works flat out while the app
is handling requests takes the GIL for tens of milliseconds at a stretch (the interpreter's
5 ms switch interval is not honoured reliably by a thread making many short C calls), and the
app's requests wait. The pacer lets the background threads work at most ``duty_cycle`` of the
time while the app is producing spans, and at full speed as soon as it pauses. The buffer it
works from (``BufferedSpanProcessor``) is what absorbs the difference.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional


class Pacer:
    """Decide how long a background thread rests after a piece of work.

    >>> pacer = Pacer(duty_cycle=0.25)
    >>> pacer.arrivals += 1          # the app thread, for each span it finishes
    >>> pacer.rest(cpu_seconds)      # a background thread, after each piece of work

    ``arrivals`` is a plain counter bumped without a lock: a lost increment only makes one
    rest decision slightly less informed, and a lock here would cost every span.
    """

    def __init__(self, duty_cycle: float = 0.1, *, idle_after: float = 0.05) -> None:
        if not 0.0 < duty_cycle <= 1.0:
            raise ValueError("duty_cycle must be in (0, 1]")
        self._duty_cycle = duty_cycle
        self._idle_after = idle_after
        self._working: dict[int, float] = {}  # thread id -> when it last worked
        self.arrivals = 0
        self._seen = 0
        self._last_arrival = 0.0

    def app_is_busy(self) -> bool:
        """True when the app finished spans within the last ``idle_after`` seconds."""
        now = time.monotonic()
        arrivals = self.arrivals
        if arrivals != self._seen:
            self._seen = arrivals
            self._last_arrival = now
            return True
        return now - self._last_arrival < self._idle_after

    def rest(
        self,
        cpu_seconds: float,
        *,
        urgent: bool = False,
        until: Optional[threading.Event] = None,
    ) -> None:
        """Sleep in proportion to ``cpu_seconds`` of work just done, if the app is busy.

        ``urgent`` work (a buffer close to its budget, a flush) does not rest, and a rest
        ends early when ``until`` is set (work that became urgent meanwhile).
        """
        if urgent or self._duty_cycle >= 1.0 or not self.app_is_busy():
            return
        # The duty cycle is shared by all our background threads (the buffer's worker, the
        # sender): with n of them working, each rests (n / duty - 1) times its work.
        now = time.monotonic()
        self._working[threading.get_ident()] = now
        working = sum(1 for since in self._working.values() if now - since < 1.0)
        # Sleeping releases the GIL: the app runs at full speed meanwhile.
        seconds = min(cpu_seconds * (working / self._duty_cycle - 1.0), 0.5)
        if until is None:
            time.sleep(seconds)
        else:
            until.wait(seconds)


class NeverRest(Pacer):
    """A pacer for threads that should always work at full speed (free-threaded Python)."""

    def __init__(self) -> None:
        super().__init__(1.0)  # a full duty cycle: rest() returns at once


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


# Without a GIL our threads take nothing from the app's: no reason to rest.
_SHARED: Pacer = Pacer() if _gil_enabled() else NeverRest()


def shared_pacer() -> Pacer:
    """The process's pacer: there is one GIL per process, so one view of how busy the app is."""
    return _SHARED
