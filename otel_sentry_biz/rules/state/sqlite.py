"""The SQLite state store: processes on one host share windows through one database file.

WAL mode lets readers run beside the single writer; every operation is one short
``BEGIN IMMEDIATE`` transaction, so concurrent increments from many processes add up exactly.
The file lives on local disk, so an operation costs microseconds; ``busy_timeout`` bounds how
long a span's thread may wait for another process's transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from typing import Callable, Optional

from otel_sentry_biz.rules.state import StateStoreError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS counters ("
    " key TEXT NOT NULL, field TEXT NOT NULL, value REAL NOT NULL, expires REAL NOT NULL,"
    " PRIMARY KEY (key, field)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS marks ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL) WITHOUT ROWID",
)
#: Writes between two purges of expired rows (amortised housekeeping).
_PURGE_EVERY = 1000


def sqlite_path(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db`` (as in
    SQLAlchemy). Raises :class:`StateStoreError` for a URL without a path."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise StateStoreError(
            f"bad SQLite state URL {url!r}: use sqlite:///relative.db or sqlite:////abs/path.db"
        )
    path = url[len(prefix) :].split("?", 1)[0]
    if not path:
        raise StateStoreError(f"{url!r} names no file: use sqlite:////var/lib/app/rules.db")
    return path


class SQLiteStore:
    """State shared by the processes of one host through the database file at ``path``."""

    def __init__(
        self, path: str, *, busy_timeout: float = 2.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: Optional[sqlite3.Connection] = None
        self._pid = 0
        self._writes = 0
        self._connection()  # fail at start-up, with the fix, rather than in a request

    def incr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        with self._transaction() as (conn, now):
            # One expiry per record, as in Redis: live fields of the key are refreshed
            # together, so they also expire together.
            conn.execute(
                "UPDATE counters SET expires = ? WHERE key = ? AND expires > ?",
                (now + ttl, key, now),
            )
            conn.executemany(
                "INSERT INTO counters (key, field, value, expires) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key, field) DO UPDATE SET"
                " value = CASE WHEN counters.expires <= ? THEN excluded.value"
                " ELSE counters.value + excluded.value END,"
                " expires = excluded.expires",
                [(key, f, float(a), now + ttl, now) for f, a in amounts.items()],
            )
            marks = ",".join("?" * len(amounts))
            rows = conn.execute(
                f"SELECT field, value FROM counters WHERE key = ? AND field IN ({marks})",
                (key, *amounts),
            ).fetchall()
        return dict(rows)

    def add_once(self, key: str, ttl: float) -> bool:
        with self._transaction() as (conn, now):
            conn.execute("DELETE FROM marks WHERE key = ? AND expires <= ?", (key, now))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO marks (key, value, expires) VALUES (?, '1', ?)",
                (key, now + ttl),
            )
            return cursor.rowcount == 1

    def put_if_absent(self, key: str, value: str, ttl: float) -> str:
        with self._transaction() as (conn, now):
            conn.execute("DELETE FROM marks WHERE key = ? AND expires <= ?", (key, now))
            conn.execute(
                "INSERT OR IGNORE INTO marks (key, value, expires) VALUES (?, ?, ?)",
                (key, value, now + ttl),
            )
            (held,) = conn.execute("SELECT value FROM marks WHERE key = ?", (key,)).fetchone()
            return str(held)

    def get(self, key: str) -> Optional[str]:
        with self._transaction() as (conn, now):
            row = conn.execute(
                "SELECT value FROM marks WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
        return None if row is None else str(row[0])

    def delete(self, key: str) -> None:
        with self._transaction() as (conn, _now):
            conn.execute("DELETE FROM counters WHERE key = ?", (key,))
            conn.execute("DELETE FROM marks WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- connection and transactions --------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child opens its own.
        if self._conn is None or self._pid != os.getpid():
            try:
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                self._set_up(conn)
            except sqlite3.Error as exc:
                raise StateStoreError(
                    f"cannot open the SQLite state store {self._path!r} ({exc}): check the "
                    "directory exists and is writable; an absolute path takes four slashes, "
                    "sqlite:////var/lib/app/rules.db"
                ) from None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _set_up(self, conn: sqlite3.Connection) -> None:
        # Several processes opening a new database at once race to switch it to WAL and create
        # the tables; SQLite may answer "locked" without waiting, so retry for busy_timeout.
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                # Counters are housekeeping, not records: losing the last writes on power
                # loss is acceptable, an fsync per span is not.
                conn.execute("PRAGMA synchronous = NORMAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _transaction(self) -> _Transaction:
        return _Transaction(self)


class _Transaction:
    """``with store._transaction() as (conn, now):`` one IMMEDIATE transaction, under the lock."""

    __slots__ = ("_store",)

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __enter__(self) -> tuple[sqlite3.Connection, float]:
        store = self._store
        store._lock.acquire()
        try:
            conn = store._connection()
            # IMMEDIATE takes the write lock up front, so read-modify-write is atomic
            # across processes and a busy database waits (busy_timeout) instead of failing.
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            store._lock.release()
            raise
        return conn, store._clock()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        store = self._store
        conn = store._conn
        try:
            if conn is not None:
                if exc_type is None:
                    store._writes += 1
                    if store._writes % _PURGE_EVERY == 0:
                        now = store._clock()
                        conn.execute("DELETE FROM counters WHERE expires <= ?", (now,))
                        conn.execute("DELETE FROM marks WHERE expires <= ?", (now,))
                    conn.execute("COMMIT")
                else:
                    conn.execute("ROLLBACK")
        finally:
            store._lock.release()
