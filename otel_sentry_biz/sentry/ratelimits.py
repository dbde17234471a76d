"""Sentry's rate-limit protocol as pure functions: ``Retry-After`` and ``X-Sentry-Rate-Limits``.

``X-Sentry-Rate-Limits: 60:transaction;span:organization, 2700::project`` means: no
transactions or spans for 60 s, nothing at all for 2700 s. An empty category list limits
every category. ``now`` is injectable so every case is tested without a clock or a socket.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import threading
from collections.abc import Mapping
from typing import Optional

#: Retry-After default when a 429 carries no usable header (sentry-sdk uses the same).
DEFAULT_RETRY_AFTER = 60.0
#: The key for "every category".
ALL = None
#: Longest pause we honour. Sentry sends long ones when a quota is used up; waiting longer
#: than this means asking again once a day, not going silent until the process restarts.
MAX_RETRY_AFTER = 86400.0


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:  # "inf" and "nan" are no delays: an endless pause would silence us until restart
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # the asctime form carries no zone: HTTP dates are GMT
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return min(max(0.0, parsed.timestamp() - now), MAX_RETRY_AFTER)


def parse_rate_limits(value: Optional[str], now: float) -> dict[Optional[str], float]:
    """Deadlines (absolute, on ``now``'s clock) per category from ``X-Sentry-Rate-Limits``.

    Garbage entries are skipped; the longest deadline wins when a category repeats.
    """
    deadlines: dict[Optional[str], float] = {}
    for entry in (value or "").split(","):
        parts = entry.strip().split(":")
        if not parts or not parts[0]:
            continue
        try:
            retry_after = float(parts[0])
        except ValueError:
            continue
        if not math.isfinite(retry_after) or retry_after < 0:
            continue
        retry_after = min(retry_after, MAX_RETRY_AFTER)
        categories = parts[1].split(";") if len(parts) > 1 else [""]
        deadline = now + retry_after
        for category in categories:
            key = category.strip() or ALL
            if deadline > deadlines.get(key, 0.0):
                deadlines[key] = deadline
    return deadlines


class RateLimits:
    """Current rate limits per data category; thread-safe."""

    def __init__(self) -> None:
        self._deadlines: dict[Optional[str], float] = {}
        self._lock = threading.Lock()

    def update_from_response(self, status: int, headers: Mapping[str, str], now: float) -> bool:
        """Learn limits from a response; True when the response imposed one."""
        found = parse_rate_limits(_header(headers, "X-Sentry-Rate-Limits"), now)
        if not found and status == 429:
            retry_after = parse_retry_after(_header(headers, "Retry-After"), now)
            found = {ALL: now + (DEFAULT_RETRY_AFTER if retry_after is None else retry_after)}
        if not found:
            return False
        with self._lock:
            for key, deadline in found.items():
                if deadline > self._deadlines.get(key, 0.0):
                    self._deadlines[key] = deadline
        return True

    def limit(self, category: Optional[str], until: float) -> None:
        """Pause ``category`` (None: every category) until ``until``, unless already longer."""
        with self._lock:
            if until > self._deadlines.get(category, 0.0):
                self._deadlines[category] = until

    def is_limited(self, category: str, now: float) -> bool:
        with self._lock:
            return max(self._deadlines.get(category, 0.0), self._deadlines.get(ALL, 0.0)) > now

    def next_expiry(self, now: float) -> Optional[float]:
        """The earliest deadline still in the future, or None."""
        with self._lock:
            future = [deadline for deadline in self._deadlines.values() if deadline > now]
        return min(future) if future else None

    def snapshot(self, now: float) -> dict[str, float]:
        """Seconds left per limited category (``"*"`` for all), for health reports."""
        with self._lock:
            return {
                (key or "*"): round(deadline - now, 3)
                for key, deadline in self._deadlines.items()
                if deadline > now
            }


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value
