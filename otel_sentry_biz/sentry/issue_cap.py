"""Per-issue caps: at most N events per issue per hour (``SENTRY_MAX_EVENTS_PER_ISSUE``).

A loop that fails on every request would otherwise send thousands of copies of one error.
Sentry groups them into one issue anyway; past the cap, the copies only cost quota. The
issue key approximates Sentry's grouping: the event's fingerprint when it has one (business
violations), else the exception type and the innermost frame, else the message.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any, Callable


class IssueCap:
    """Admit at most ``limit`` events per issue key in each ``window`` seconds.

    >>> cap = IssueCap(50)
    >>> cap.admit(issue_key(event))
    True

    Memory is bounded: the ``max_issues`` most recently seen keys are remembered.
    """

    def __init__(
        self,
        limit: int,
        *,
        window: float = 3600.0,
        max_issues: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("IssueCap limit must be >= 1")
        self._limit = limit
        self._window = window
        self._max_issues = max_issues
        self._clock = clock
        self._seen: OrderedDict[Hashable, list[float]] = OrderedDict()  # key -> [start, count]
        self._lock = threading.Lock()

    def admit(self, key: Hashable) -> bool:
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self._window:
                entry = [now, 0]
                self._seen[key] = entry
                if len(self._seen) > self._max_issues:
                    self._seen.popitem(last=False)
            else:
                self._seen.move_to_end(key)
            entry[1] += 1
            return entry[1] <= self._limit


def issue_key(event: Mapping[str, Any]) -> Hashable:
    """What Sentry would group ``event`` by, closely enough for a cap."""
    fingerprint = event.get("fingerprint")
    if fingerprint:
        parts = tuple(map(str, fingerprint))
        if _DEFAULT_PARTS.isdisjoint(parts):
            return ("fingerprint", *parts)
        # "{{ default }}": Sentry's own grouping, split further by the other parts.
        return ("fingerprint", *parts, _default_key(event))
    return _default_key(event)


#: Sentry's marker for its default grouping inside a fingerprint, both spellings.
_DEFAULT_PARTS = frozenset({"{{ default }}", "{{default}}"})


def _default_key(event: Mapping[str, Any]) -> Hashable:
    values = (event.get("exception") or {}).get("values") or []
    if values:
        last = values[-1]
        frames = (last.get("stacktrace") or {}).get("frames") or [{}]
        frame = frames[-1]
        return (
            "exception",
            last.get("type"),
            frame.get("abs_path") or frame.get("filename"),
            frame.get("function"),
        )
    message = (event.get("logentry") or {}).get("formatted") or event.get("message")
    return ("message", str(message))
