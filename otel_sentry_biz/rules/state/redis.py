"""The Redis state store: a fleet of web and worker processes shares one daily total.

Each operation is one round trip and atomic on the server (a Lua script or ``SET NX``), so
concurrent updates from many hosts add up exactly. Socket timeouts are short on purpose: a
span's thread must not wait on a slow Redis; a timeout makes the rule skip that span (and the
circuit breaker skips the store for a while) instead of slowing the application.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from otel_sentry_biz.rules.state import StateStoreError

DEFAULT_PREFIX = "otel_sentry_biz:"
DEFAULT_TIMEOUT = 0.25  # seconds; local or same-datacenter Redis answers in well under 1 ms

# KEYS[1]: the record; ARGV[1]: ttl in ms; then field, amount pairs. Returns the new values.
_INCR = """
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
"""

# KEYS[1]: the key; ARGV[1]: value; ARGV[2]: ttl in ms. Returns the value the key holds.
_PUT_IF_ABSENT = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""


class RedisStore:
    """State shared through Redis; keys are namespaced by ``prefix``."""

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._incr = client.register_script(_INCR)
        self._put_if_absent = client.register_script(_PUT_IF_ABSENT)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """``redis://host:6379/0?prefix=app:&timeout=0.1``; other query options go to redis-py."""
        try:
            import redis
        except ImportError:
            raise StateStoreError(
                f"the state store {url!r} needs the redis package: pip install redis "
                "(or otel-sentry-biz[redis])"
            ) from None
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        prefix = options.pop("prefix", DEFAULT_PREFIX)
        try:
            timeout = float(options.pop("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise StateStoreError(f"{url!r}: timeout must be a number of seconds") from None
        bare = urlunsplit(parts._replace(query=urlencode(options)))
        try:
            client = redis.Redis.from_url(
                bare, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        except ValueError as exc:
            raise StateStoreError(
                f"bad Redis URL {url!r} ({exc}): use redis://host:6379/0"
            ) from None
        return cls(client, prefix)

    def incr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        args: list[Any] = [_ms(ttl)]
        for field, amount in amounts.items():
            args.extend((field, repr(float(amount))))
        values = self._incr(keys=[self._prefix + key], args=args)
        return {field: float(value) for field, value in zip(amounts, values)}

    def add_once(self, key: str, ttl: float) -> bool:
        return bool(self._client.set(self._prefix + key, b"1", nx=True, px=_ms(ttl)))

    def put_if_absent(self, key: str, value: str, ttl: float) -> str:
        return _text(self._put_if_absent(keys=[self._prefix + key], args=[value, _ms(ttl)]))

    def get(self, key: str) -> Optional[str]:
        held = self._client.get(self._prefix + key)  # Redis drops expired keys itself
        return None if held is None else _text(held)

    def delete(self, key: str) -> None:
        self._client.delete(self._prefix + key)

    def close(self) -> None:
        self._client.close()

    def ping(self) -> bool:
        """True when the server answers (used by health checks and the tests)."""
        return bool(self._client.ping())


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(reply: Any) -> str:
    # A client made with decode_responses=True already answers str.
    return reply.decode() if isinstance(reply, bytes) else str(reply)
