"""Fixtures for the rules tests: real spans through a real provider, and every state store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from otel_sentry_biz import BusinessSpanProcessor
from otel_sentry_biz.rules import RuleSet
from otel_sentry_biz.rules.spec import RuleSpec

#: A Monday, 2025-06-02 10:00:00 UTC: fixed so window and calendar tests are deterministic.
MONDAY_10H = 1_748_858_400.0
REDIS_URL = os.environ.get("OTEL_SENTRY_BIZ_TEST_REDIS", "redis://127.0.0.1:6379/0")
REDIS_HOW = (
    "start Redis on 127.0.0.1:6379 (or set OTEL_SENTRY_BIZ_TEST_REDIS=redis://host:port/db) "
    "and pip install redis"
)


def redis_unavailable(url: str = REDIS_URL) -> Optional[str]:
    """Why the Redis tests cannot run here, or None when they can."""
    try:
        import redis
    except ImportError:
        return f"the redis package is not installed: {REDIS_HOW}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Redis is not reachable at {url} ({exc}): {REDIS_HOW}"
    return None


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """The URL of a fresh, empty store of each kind (Redis keys under a unique prefix)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        reason = redis_unavailable()
        if reason:
            pytest.skip(reason)
        prefix = f"test-{uuid.uuid4().hex}:"
        yield f"{REDIS_URL}?prefix={prefix}"
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


class Judge:
    """Sends real spans through TracerProvider -> BusinessSpanProcessor(rules=[...]).

    >>> judge.use(Threshold(name="t", attribute="amount", above=10))
    >>> judge.span("op", amount=11)   # the violations recorded on that span
    """

    def __init__(self, switch: Any) -> None:
        self._switch = switch
        self._tracer = trace.get_tracer("tests.rules")
        self.exporter = InMemorySpanExporter()
        self.rules: Optional[RuleSet] = None

    def use(self, *specs: RuleSpec, **options: Any) -> RuleSet:
        options.setdefault("clock", lambda: MONDAY_10H)
        self.rules = RuleSet(specs, **options)
        self._switch.target = BusinessSpanProcessor(
            rules=[self.rules], next=SimpleSpanProcessor(self.exporter)
        )
        return self.rules

    def span(
        self,
        name: str = "op",
        *,
        at: float = MONDAY_10H,
        duration: float = 0.01,
        error: bool = False,
        attributes: Optional[dict[str, Any]] = None,
        **business: Any,
    ) -> list[dict[str, Any]]:
        """End a span at ``at`` with ``biz.<key>`` attributes; return its violations."""
        attrs = {f"biz.{key}": value for key, value in business.items()}
        attrs.update(attributes or {})
        span = self._tracer.start_span(name, attributes=attrs, start_time=_ns(at - duration))
        if error:
            span.set_status(Status(StatusCode.ERROR, "failed"))
        span.end(end_time=_ns(at))
        finished = self.exporter.get_finished_spans()[-1]
        return [dict(e.attributes) for e in finished.events if e.name == "biz.violation"]

    def close(self) -> None:
        if self.rules is not None:
            self.rules.close()


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


@pytest.fixture
def judge(use_processor: Any) -> Iterator[Judge]:
    found = Judge(use_processor)
    yield found
    found.close()


def rules_of(violations: list[dict[str, Any]]) -> list[str]:
    """The rule names of ``violations``, in order."""
    return [v["biz.violation.rule"] for v in violations]
