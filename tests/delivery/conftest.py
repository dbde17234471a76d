"""Delivery-layer fixtures: a real LocalReceiver on 127.0.0.1 and real EnvelopeSenders.

Nothing here mocks HTTP. The receiver's request handler is only wrapped so tests can read the
headers and raw bodies that really went over the socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from otel_sentry_biz import receiver as receiver_module
from otel_sentry_biz.sentry.outbox import MemoryOutbox
from otel_sentry_biz.sentry.sender import EnvelopeSender
from tests.delivery.helpers import Clock, RecordingReceiver, recording_handler_for


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingReceiver]:
    monkeypatch.setattr(
        receiver_module, "_handler_for", recording_handler_for(receiver_module._handler_for)
    )
    running = RecordingReceiver().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_sender(
    receiver: RecordingReceiver, clock: Clock
) -> Iterator[Callable[..., tuple[EnvelopeSender, MemoryOutbox]]]:
    """Start a sender on a MemoryOutbox with small, fast delivery settings."""
    started: list[EnvelopeSender] = []

    def make(
        outbox: Optional[MemoryOutbox] = None, dsn: Optional[str] = None, **options: Any
    ) -> tuple[EnvelopeSender, MemoryOutbox]:
        outbox = outbox if outbox is not None else MemoryOutbox()
        settings: dict[str, Any] = {
            "timeout": 2.0,
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "client_report_interval": 3600.0,
            "clock": clock,
            **options,
        }
        sender = EnvelopeSender(dsn or receiver.dsn, outbox, **settings)
        sender.start()
        started.append(sender)
        return sender, outbox

    yield make
    for sender in started:
        sender.shutdown(timeout=0.3)
