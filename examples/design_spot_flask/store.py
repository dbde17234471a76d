"""The site's data: users and posts in SQLite, each query a monitored database operation.

``biz.db_operation`` replaces the seed's hand-timed queries: each call is a ``db`` span with
the semantic-convention names (``db.operation.name``, ``db.collection.name``,
``db.system.name``) in the request's transaction, and a call over 500 ms is a
``slow_operation`` issue.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import otel_sentry_biz as biz

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT UNIQUE NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    user_type TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES users (id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    media TEXT,
    status TEXT NOT NULL DEFAULT 'draft'
);
"""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    password_hash: str
    user_type: str


@dataclass(frozen=True)
class Post:
    id: int
    author_id: int
    title: str
    status: str


class DuplicateUser(ValueError):
    """The username is taken."""


class Store:
    """Users and posts in the SQLite file ``path``; safe to share between request threads
    (each call opens its own connection, as SQLite connections are per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connection() as connection:
            connection.executescript(SCHEMA)

    @biz.db_operation("insert_user", table="users", system="sqlite")
    def add_user(self, username: str, email: str, password_hash: str, user_type: str) -> int:
        try:
            with self._connection() as connection:
                return connection.execute(
                    "INSERT INTO users (username, email, password_hash, user_type) "
                    "VALUES (?, ?, ?, ?)",
                    (username, email, password_hash, user_type),
                ).lastrowid
        except sqlite3.IntegrityError:
            raise DuplicateUser(f"username {username!r} is taken") from None

    @biz.db_operation("find_user", table="users", system="sqlite")
    def user_named(self, username: str) -> Optional[User]:
        return self._user("username = ?", username)

    @biz.db_operation("load_user", table="users", system="sqlite")
    def user(self, user_id: int) -> Optional[User]:
        return self._user("id = ?", user_id)

    @biz.db_operation("insert_post", table="posts", system="sqlite")
    def add_post(self, author_id: int, title: str, body: str, media: Optional[str]) -> int:
        with self._connection() as connection:
            return connection.execute(
                "INSERT INTO posts (author_id, title, body, media) VALUES (?, ?, ?, ?)",
                (author_id, title, body, media),
            ).lastrowid

    @biz.db_operation("count_posts", table="posts", system="sqlite")
    def post_count(self, author_id: int) -> int:
        with self._connection() as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM posts WHERE author_id = ?", (author_id,)
            ).fetchone()
        return count

    @biz.db_operation("load_post", table="posts", system="sqlite")
    def post(self, post_id: int) -> Optional[Post]:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT id, author_id, title, status FROM posts WHERE id = ?", (post_id,)
            ).fetchone()
        return Post(*row) if row else None

    @biz.db_operation("update_post_status", table="posts", system="sqlite")
    def set_status(self, post_id: int, status: str) -> None:
        with self._connection() as connection:
            connection.execute("UPDATE posts SET status = ? WHERE id = ?", (status, post_id))

    def _user(self, where: str, value: object) -> Optional[User]:
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT id, username, password_hash, user_type FROM users WHERE {where}",
                (value,),
            ).fetchone()
        return User(*row) if row else None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # closing() closes the connection; the inner `with` commits (or rolls back).
        with closing(sqlite3.connect(self.path, timeout=5)) as connection, connection:
            yield connection
