"""Shared state for windowed rules, journeys and funnels, chosen by URL: memory, SQLite (one
host) or Redis (a fleet).

>>> store = open_store("sqlite:////var/lib/app/rules.db")
>>> store.incr("daily:ACME", {"sum": 120.5, "count": 1}, ttl=86400)
{'sum': 120.5, 'count': 1.0}

Five atomic operations are all its users need, and each store implements them with the same
semantics (the test suite runs one suite against all three):

- ``incr(key, amounts, ttl)`` adds to numeric fields of a record and returns their new values;
  the record's expiry is pushed to ``ttl`` seconds from now on every write.
- ``add_once(key, ttl)`` is True for the first caller within ``ttl`` seconds of the first
  call, False for every later one (duplicates, "fire once per window").
- ``put_if_absent(key, value, ttl)`` stores ``value`` unless the key holds one, and returns
  the value the key holds (consistency: the first value seen wins).
- ``get(key)`` is the value ``put_if_absent`` stored at the key, or None; reading writes
  nothing (a journey step looks its journey up).
- ``delete(key)`` forgets a key (a failure streak reset by a success).

Expired keys read as absent. A key serves one kind of record: a counter of ``incr``, a mark
of ``add_once`` or a value of ``put_if_absent`` (the stores differ when one key mixes them).
Failures of a networked or on-disk store raise :class:`StoreUnavailable`, which its users
count and skip: a rule, journey or funnel never breaks a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from otel_sentry_biz.config import ConfigError

DEFAULT_STATE_URL = "memory://"


class StateStoreError(ConfigError):
    """A state-store URL or its options are invalid; the message names the fix."""


class StoreUnavailable(Exception):
    """The store could not answer now (I/O error, timeout, or its circuit breaker is open)."""


@runtime_checkable
class StateStore(Protocol):
    """Atomic counters and marks with expiry, shared by every process using the same URL."""

    def incr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        """Add ``amounts`` to the fields of ``key``; return the new value of each."""
        ...

    def add_once(self, key: str, ttl: float) -> bool:
        """True when ``key`` was not set (and now is, for ``ttl`` seconds); else False."""
        ...

    def put_if_absent(self, key: str, value: str, ttl: float) -> str:
        """Set ``key`` to ``value`` unless it holds a value; return the value it holds."""
        ...

    def get(self, key: str) -> Optional[str]:
        """The value ``put_if_absent`` stored at ``key``; None if absent or expired."""
        ...

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...


#: What a store must do; an object given as one is checked for these by name.
_OPERATIONS = ("incr", "add_once", "put_if_absent", "get", "delete", "close")


def open_store(url: str = DEFAULT_STATE_URL) -> StateStore:
    """The store named by ``url``.

    - ``memory://`` (default): this process only; ``?max_keys=100000`` bounds its size.
    - ``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``: processes on one host
      (WAL mode, atomic transactions).
    - ``redis://host:6379/0`` (or ``rediss://``): processes on many hosts; needs the
      ``redis`` package. ``?prefix=app:&timeout=0.1`` set the key prefix and socket timeout.

    Raises :class:`StateStoreError` naming the fix for an unknown scheme or bad option, or
    for an object given as a store that lacks operations of :class:`StateStore`.
    """
    if not isinstance(url, str):
        # Callers pass on "a URL or a store"; an object that is no StateStore lands here.
        missing = [name for name in _OPERATIONS if not callable(getattr(url, name, None))]
        raise StateStoreError(
            f"{type(url).__name__} is not a state store: add {', '.join(missing)} "
            "(see otel_sentry_biz.rules.state.StateStore), or pass a URL such as "
            "sqlite:////path/to/rules.db"
        )
    parts = urlsplit(url)
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    scheme = parts.scheme.lower()
    if scheme == "memory":
        from otel_sentry_biz.rules.state.memory import MemoryStore

        return MemoryStore(max_keys=_int_option(url, options, "max_keys", 100_000))
    if scheme == "sqlite":
        from otel_sentry_biz.rules.state.breaker import Breaker
        from otel_sentry_biz.rules.state.sqlite import SQLiteStore, sqlite_path

        return Breaker(SQLiteStore(sqlite_path(url)))
    if scheme in ("redis", "rediss", "unix"):
        from otel_sentry_biz.rules.state.breaker import Breaker
        from otel_sentry_biz.rules.state.redis import RedisStore

        return Breaker(RedisStore.from_url(url))
    raise StateStoreError(
        f"unknown state store URL {url!r}: use memory://, sqlite:////path/to/rules.db "
        "or redis://host:6379/0"
    )


def state_url_problem(url: str) -> Optional[str]:
    """Why ``url`` cannot name a store, or None; checks its form without connecting."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("memory", "sqlite", "redis", "rediss", "unix"):
        return (
            f"unknown state store URL {url!r}: use memory://, sqlite:////path/to/rules.db "
            "or redis://host:6379/0"
        )
    if scheme == "sqlite":
        from otel_sentry_biz.rules.state.sqlite import sqlite_path

        try:
            sqlite_path(url)
        except StateStoreError as exc:
            return str(exc)
    return None


def _int_option(url: str, options: Mapping[str, str], name: str, default: int) -> int:
    text = options.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise StateStoreError(f"{url!r}: {name} must be a positive integer, not {text!r}")
    return value


__all__ = [
    "DEFAULT_STATE_URL",
    "StateStore",
    "StateStoreError",
    "StoreUnavailable",
    "open_store",
    "state_url_problem",
]
