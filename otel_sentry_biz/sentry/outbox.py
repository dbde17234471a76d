"""The outbox: envelopes waiting for the sender, bounded, with counted drops.

The exporter ``put``s serialized envelopes; the sender ``take``s a few (a lease), then
``ack``s what was delivered, ``release``s what must be retried and ``drop``s what Sentry
refused. :class:`Outbox` is the protocol a durable (SQLite) outbox implements too.

Drop policy when full (by count or bytes): the oldest *transaction* goes first; an error or
business issue is only dropped when no transaction is left to drop, because one error is
worth more to on-call than any one transaction. Every drop is counted by (reason, category)
and reported to Sentry as a client report.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Protocol

from otel_sentry_biz.sentry.envelopes import TRANSACTION

QUEUE_OVERFLOW = "queue_overflow"


@dataclass
class OutboxEntry:
    """One envelope to deliver. ``event_id`` stays the same across retries (idempotent)."""

    event_id: str
    category: str
    payload: bytes
    created_at: float = field(default_factory=time.time)
    attempts: int = 0
    #: Identity while leased to the sender; unique within the process (a counter: cheap).
    key: int = field(default_factory=itertools.count().__next__)

    @classmethod
    def new(cls, event_id: str, category: str, payload: bytes) -> OutboxEntry:
        return cls(event_id=event_id, category=category, payload=payload)


class Outbox(Protocol):
    """What the sender needs from an outbox. Implementations must be thread-safe."""

    def put(self, entry: OutboxEntry) -> bool:
        """Queue ``entry``; False when it (or something older) had to be dropped for it."""

    def take(self, max_items: int, skip: Callable[[str], bool]) -> list[OutboxEntry]:
        """Lease up to ``max_items`` entries, errors first, skipping categories ``skip`` names."""

    def ack(self, entries: Iterable[OutboxEntry]) -> None:
        """Delivered: forget them."""

    def release(self, entries: Iterable[OutboxEntry]) -> None:
        """Not delivered: back to the front of the queue, in order, for a later attempt."""

    def drop(self, entries: Iterable[OutboxEntry], reason: str) -> None:
        """Will never be delivered: forget them and count them under ``reason``."""

    def __len__(self) -> int:
        """Entries queued or leased."""

    def drops(self) -> dict[tuple[str, str], int]:
        """Drops so far by (reason, category), since the outbox was created."""

    def take_unreported_drops(self) -> dict[tuple[str, str], int]:
        """Drops not yet reported to Sentry; resets that tally."""


class MemoryOutbox:
    """An in-memory :class:`Outbox` bounded by ``max_items`` and ``max_bytes``."""

    def __init__(self, *, max_items: int = 100_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_items <= 0 or max_bytes <= 0:
            raise ValueError("MemoryOutbox max_items and max_bytes must be positive")
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._errors: deque[OutboxEntry] = deque()
        self._transactions: deque[OutboxEntry] = deque()
        self._leased: dict[int, OutboxEntry] = {}
        self._bytes = 0
        self._drops: Counter[tuple[str, str]] = Counter()
        self._unreported: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._errors) + len(self._transactions) + len(self._leased)

    def put(self, entry: OutboxEntry) -> bool:
        size = len(entry.payload)
        kept_all = True
        with self._lock:
            if size > self._max_bytes:  # can never fit: evicting the others would not help
                self._count(QUEUE_OVERFLOW, entry.category)
                return False
            while self._errors or self._transactions or self._leased:
                if len(self) < self._max_items and self._bytes + size <= self._max_bytes:
                    break
                victim = self._victim(entry)
                if victim is None:
                    break  # only leased entries left: they are on their way out
                kept_all = False
                if victim is entry:
                    self._count(QUEUE_OVERFLOW, entry.category)
                    return False
            self._queue_of(entry).append(entry)
            self._bytes += size
        return kept_all

    def _victim(self, incoming: OutboxEntry) -> OutboxEntry | None:
        if self._transactions:
            victim = self._transactions.popleft()
        elif incoming.category == TRANSACTION:
            return incoming
        elif self._errors:
            victim = self._errors.popleft()
        else:
            return None
        self._bytes -= len(victim.payload)
        self._count(QUEUE_OVERFLOW, victim.category)
        return victim

    def take(
        self, max_items: int, skip: Callable[[str], bool] = lambda _: False
    ) -> list[OutboxEntry]:
        taken: list[OutboxEntry] = []
        with self._lock:
            for queue in (self._errors, self._transactions):
                if not queue or skip(queue[0].category):
                    continue
                while queue and len(taken) < max_items:
                    entry = queue.popleft()
                    entry.attempts += 1
                    self._leased[entry.key] = entry
                    taken.append(entry)
        return taken

    def ack(self, entries: Iterable[OutboxEntry]) -> None:
        with self._lock:
            for entry in entries:
                if self._leased.pop(entry.key, None) is not None:
                    self._bytes -= len(entry.payload)

    def release(self, entries: Iterable[OutboxEntry]) -> None:
        with self._lock:
            for entry in reversed(list(entries)):
                if self._leased.pop(entry.key, None) is not None:
                    self._queue_of(entry).appendleft(entry)

    def drop(self, entries: Iterable[OutboxEntry], reason: str) -> None:
        with self._lock:
            for entry in entries:
                if self._leased.pop(entry.key, None) is not None:
                    self._bytes -= len(entry.payload)
                    self._count(reason, entry.category)

    def drops(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._drops)

    def take_unreported_drops(self) -> dict[tuple[str, str], int]:
        with self._lock:
            unreported, self._unreported = dict(self._unreported), Counter()
        return unreported

    def _queue_of(self, entry: OutboxEntry) -> deque[OutboxEntry]:
        return self._transactions if entry.category == TRANSACTION else self._errors

    def _count(self, reason: str, category: str) -> None:
        self._drops[(reason, category)] += 1
        self._unreported[(reason, category)] += 1
