"""Time windows: tumbling buckets aligned to the Unix epoch.

A "1d" window is a UTC day, "1h" an hour on the hour. Tumbling buckets make a window one key
in the state store, incremented atomically, which every store can do exactly and cheaply;
sliding windows would need a sorted set per group. The price: a burst straddling a boundary
is split between two windows (documented in docs/rules.md).
"""

from __future__ import annotations

#: How long a window's state outlives the window, for spans that end a little late.
GRACE_SECONDS = 60.0


def bucket(time: float, window: float) -> int:
    """The index of the window containing ``time`` (seconds since the epoch)."""
    return int(time // window)


def ttl(window: float) -> float:
    """How long to keep a window's state: until the window has surely ended."""
    return window + GRACE_SECONDS
