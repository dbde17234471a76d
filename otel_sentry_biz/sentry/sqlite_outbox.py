"""A durable :class:`~otel_sentry_biz.sentry.outbox.Outbox` in one SQLite file (WAL).

What the app queued survives a crash or ``kill -9`` of the app: the next process that opens
the file delivers it. Same bounds and drop policy as the in-memory outbox (oldest transactions
first, errors only when no transaction is left), same counted drops.

Leases live in the file too, so several processes (web workers, Celery workers) may share one
outbox without sending an envelope twice: an envelope leased by a process that has died
(same host) or whose lease ran out is taken again. A resend after a crash mid-request is
harmless: Sentry recognises an event id it already has.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional, Union

from otel_sentry_biz.sentry.envelopes import ERROR, TRANSACTION
from otel_sentry_biz.sentry.outbox import QUEUE_OVERFLOW, OutboxEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    category TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    leased_by TEXT,
    leased_until REAL
);
CREATE INDEX IF NOT EXISTS envelopes_by_category ON envelopes (category, id);
CREATE INDEX IF NOT EXISTS envelopes_leased ON envelopes (leased_by) WHERE leased_by IS NOT NULL;
-- Running totals kept by triggers: bounds are checked on every put without a table scan.
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS envelopes_in AFTER INSERT ON envelopes BEGIN
    UPDATE totals SET count = count + 1, bytes = bytes + NEW.size WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS envelopes_out AFTER DELETE ON envelopes BEGIN
    UPDATE totals SET count = count - 1, bytes = bytes - OLD.size WHERE id = 1;
END;
CREATE TABLE IF NOT EXISTS drops (
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    unreported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (reason, category)
);
"""


_RECLAIM_EVERY = 5.0  # seconds between looks for leases of dead processes


class SQLiteOutbox:
    """An :class:`Outbox` in the SQLite file at ``path``, bounded by count and bytes.

    >>> outbox = SQLiteOutbox("/var/lib/myapp/sentry-outbox.sqlite3")

    Thread-safe (one connection behind a lock); several processes may open the same file.
    ``lease_seconds`` bounds how long an envelope taken by a process that hangs stays unsent.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        *,
        max_items: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        lease_seconds: float = 300.0,
    ) -> None:
        if max_items <= 0 or max_bytes <= 0:
            raise ValueError("SQLiteOutbox max_items and max_bytes must be positive")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._lease_seconds = lease_seconds
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the process being killed; only an OS crash or power
        # loss may lose the last commits, and it costs no fsync per envelope.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._next_reclaim = 0.0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- Outbox -------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return self._totals()[0]

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._totals()[1]

    def put(self, entry: OutboxEntry) -> bool:
        size = len(entry.payload)
        with self._lock, self._transaction():
            if size > self._max_bytes:  # can never fit: evicting the others would not help
                self._count(QUEUE_OVERFLOW, entry.category, 1)
                return False
            kept_all = True
            count, total = self._totals()
            while count >= self._max_items or total + size > self._max_bytes:
                victim = self._victim()
                if victim is None and entry.category == TRANSACTION:
                    # No queued transaction to give way: the newcomer is the least valuable.
                    self._count(QUEUE_OVERFLOW, entry.category, 1)
                    return False
                if victim is None:
                    victim = self._victim(any_category=True)
                if victim is None:
                    break  # only leased entries left: they are on their way out
                kept_all = False
                victim_id, victim_category, victim_size = victim
                self._db.execute("DELETE FROM envelopes WHERE id = ?", (victim_id,))
                self._count(QUEUE_OVERFLOW, victim_category, 1)
                count, total = count - 1, total - victim_size
            cursor = self._db.execute(
                "INSERT INTO envelopes (event_id, category, payload, size, created_at, attempts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.event_id,
                    entry.category,
                    entry.payload,
                    size,
                    entry.created_at,
                    entry.attempts,
                ),
            )
            entry.key = cursor.lastrowid
            return kept_all

    def take(
        self, max_items: int, skip: Callable[[str], bool] = lambda _: False
    ) -> list[OutboxEntry]:
        now = time.time()
        with self._lock, self._transaction():
            if now >= self._next_reclaim:
                self._reclaim(now)
                self._next_reclaim = now + _RECLAIM_EVERY
            rows: list[tuple] = []
            # Errors (and business issues) before transactions, oldest first.
            for category in (ERROR, TRANSACTION):
                if len(rows) >= max_items or skip(category):
                    continue
                rows += self._db.execute(
                    "SELECT id, event_id, category, payload, created_at, attempts "
                    "FROM envelopes WHERE category = ? AND leased_until IS NULL "
                    "ORDER BY id LIMIT ?",
                    (category, max_items - len(rows)),
                ).fetchall()
            self._db.executemany(
                "UPDATE envelopes SET leased_by = ?, leased_until = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                [(self._owner, now + self._lease_seconds, row[0]) for row in rows],
            )
        return [
            OutboxEntry(event_id, category, payload, created_at, attempts + 1, key)
            for key, event_id, category, payload, created_at, attempts in rows
        ]

    def ack(self, entries: Iterable[OutboxEntry]) -> None:
        ids = [(entry.key,) for entry in entries]
        with self._lock, self._transaction():
            self._db.executemany(
                "DELETE FROM envelopes WHERE id = ? AND leased_by IS NOT NULL", ids
            )

    def release(self, entries: Iterable[OutboxEntry]) -> None:
        ids = [(entry.key,) for entry in entries]
        with self._lock, self._transaction():
            self._db.executemany(
                "UPDATE envelopes SET leased_by = NULL, leased_until = NULL "
                "WHERE id = ? AND leased_by IS NOT NULL",
                ids,
            )

    def drop(self, entries: Iterable[OutboxEntry], reason: str) -> None:
        with self._lock, self._transaction():
            for entry in entries:
                deleted = self._db.execute(
                    "DELETE FROM envelopes WHERE id = ? AND leased_by IS NOT NULL", (entry.key,)
                )
                if deleted.rowcount:
                    self._count(reason, entry.category, 1)

    def drops(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute("SELECT reason, category, total FROM drops").fetchall()
        return {(reason, category): total for reason, category, total in rows if total}

    def take_unreported_drops(self) -> dict[tuple[str, str], int]:
        with self._lock, self._transaction():
            rows = self._db.execute(
                "SELECT reason, category, unreported FROM drops WHERE unreported > 0"
            ).fetchall()
            self._db.execute("UPDATE drops SET unreported = 0")
        return {(reason, category): count for reason, category, count in rows}

    # -- inspection (``otel-sentry-biz outbox``) ------------------------------------------

    def pending(self, limit: Optional[int] = None) -> list[dict[str, object]]:
        """Queued envelopes, oldest first, without their payloads: for ``outbox show``."""
        query = (
            "SELECT id, event_id, category, size, created_at, attempts, leased_by FROM envelopes "
            "ORDER BY id"
        )
        with self._lock:
            rows = self._db.execute(
                query + (" LIMIT ?" if limit else ""), ((limit,) if limit else ())
            ).fetchall()
        names = ("id", "event_id", "category", "bytes", "created_at", "attempts", "leased_by")
        return [dict(zip(names, row)) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals ------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _victim(self, *, any_category: bool = False) -> Optional[tuple[int, str, int]]:
        """The oldest queued (not leased) transaction, or with ``any_category`` any entry."""
        where = "" if any_category else "category = 'transaction' AND "
        return self._db.execute(
            f"SELECT id, category, size FROM envelopes WHERE {where}leased_until IS NULL "
            "ORDER BY id LIMIT 1"
        ).fetchone()

    def _count(self, reason: str, category: str, count: int) -> None:
        self._db.execute(
            "INSERT INTO drops (reason, category, total, unreported) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (reason, category) DO UPDATE SET total = total + excluded.total, "
            "unreported = unreported + excluded.unreported",
            (reason, category, count, count),
        )

    def _totals(self) -> tuple[int, int]:
        return self._db.execute("SELECT count, bytes FROM totals WHERE id = 1").fetchone()

    def _reclaim(self, now: float) -> None:
        """Free the leases of processes that died (same host) and leases that ran out."""
        owners = [
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT leased_by FROM envelopes WHERE leased_by IS NOT NULL"
            )
        ]
        dead = [owner for owner in owners if owner != self._owner and not _alive(owner)]
        for owner in dead:
            self._db.execute(
                "UPDATE envelopes SET leased_by = NULL, leased_until = NULL WHERE leased_by = ?",
                (owner,),
            )
        self._db.execute(
            "UPDATE envelopes SET leased_by = NULL, leased_until = NULL "
            "WHERE leased_by IS NOT NULL AND leased_until < ?",
            (now,),
        )

    def _after_fork(self) -> None:
        # A forked child must not share the parent's SQLite connection.
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA synchronous=NORMAL")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time across processes."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _alive(owner: str) -> bool:
    """Is the process that leased (``host:pid``) still running? Unknown hosts count as alive."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's process: its lease runs out by time instead
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
