"""A circuit breaker in front of a store that does I/O.

When SQLite or Redis fails (timeout, connection refused, locked too long), every span would
otherwise pay the failure again. After one failure the breaker answers
:class:`~otel_sentry_biz.rules.state.StoreUnavailable` at once for ``cooldown`` seconds, then
lets the next call try the store again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from otel_sentry_biz.rules.state import StateStore, StoreUnavailable

_logger = logging.getLogger("otel_sentry_biz.rules.state")


class Breaker:
    """Wraps ``store``; any error of it becomes ``StoreUnavailable`` and opens the circuit."""

    def __init__(
        self,
        store: StateStore,
        *,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0
        self._lock = threading.Lock()
        self.failures = 0

    def incr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        return self._call(self.store.incr, key, amounts, ttl)

    def add_once(self, key: str, ttl: float) -> bool:
        return self._call(self.store.add_once, key, ttl)

    def put_if_absent(self, key: str, value: str, ttl: float) -> str:
        return self._call(self.store.put_if_absent, key, value, ttl)

    def get(self, key: str) -> Optional[str]:
        return self._call(self.store.get, key)

    def delete(self, key: str) -> None:
        self._call(self.store.delete, key)

    def close(self) -> None:
        self.store.close()

    def _call(self, operation: Callable[..., Any], *args: Any) -> Any:
        if self._open_until and self._clock() < self._open_until:
            raise StoreUnavailable(f"{type(self.store).__name__} is cooling down after errors")
        try:
            return operation(*args)
        except Exception as exc:
            with self._lock:
                self.failures += 1
                first = not self._open_until or self._clock() >= self._open_until
                self._open_until = self._clock() + self._cooldown
            if first:
                _logger.warning(
                    "state store %s failed (%s); everything using it skips it for %.0f s",
                    type(self.store).__name__,
                    exc,
                    self._cooldown,
                )
            raise StoreUnavailable(str(exc)) from exc
