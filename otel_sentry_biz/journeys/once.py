"""Log a repeated problem once: a client retrying a bad journey id must not flood the logs."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class FirstSeen:
    """Remembers the last ``size`` keys it was asked about (bounded memory).

    >>> seen = FirstSeen()
    >>> seen.first("journey 42"), seen.first("journey 42")
    (True, False)
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        """True the first time ``key`` is seen (or once it has been forgotten), else False."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True
