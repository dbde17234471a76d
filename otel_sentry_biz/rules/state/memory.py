"""The in-process state store: a bounded dict under a lock (the default, ``memory://``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable, Optional

#: Writes between two sweeps of expired keys: amortises the sweep to O(1) per write.
_SWEEP_EVERY = 10_000


class MemoryStore:
    """State for one process. Holds at most ``max_keys`` keys, dropping the least recently
    written first (counted in ``evicted``), so a flood of distinct group keys costs bounded
    memory rather than the host app's."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()  # key -> (expires, v)
        self._lock = threading.Lock()
        self._writes = 0
        self.evicted = 0

    def incr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        with self._lock:
            now = self._clock()
            record = self._live(key, now)
            fields = dict(record) if isinstance(record, dict) else {}
            for field, amount in amounts.items():
                fields[field] = fields.get(field, 0.0) + float(amount)
            self._write(key, fields, now, ttl)
            return {field: fields[field] for field in amounts}

    def add_once(self, key: str, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
            if self._live(key, now) is not None:
                return False
            self._write(key, True, now, ttl)
            return True

    def put_if_absent(self, key: str, value: str, ttl: float) -> str:
        with self._lock:
            now = self._clock()
            held = self._live(key, now)
            if isinstance(held, str):
                return held
            self._write(key, value, now, ttl)
            return value

    def get(self, key: str) -> Optional[str]:
        with self._lock:
            held = self._live(key, self._clock())
        # Only put_if_absent stores strings; a counter or a mark under the key is not a value.
        return held if isinstance(held, str) else None

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def _live(self, key: str, now: float) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._data[key]
            return None
        return entry[1]

    def _write(self, key: str, value: Any, now: float, ttl: float) -> None:
        self._data[key] = (now + ttl, value)
        self._data.move_to_end(key)
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep(now)
        # Full: the least recently written key goes (usually expired or idle already).
        while len(self._data) > self._max_keys:
            self._data.popitem(last=False)
            self.evicted += 1

    def _sweep(self, now: float) -> None:
        expired = [key for key, (expires, _) in self._data.items() if expires <= now]
        for key in expired:
            del self._data[key]
