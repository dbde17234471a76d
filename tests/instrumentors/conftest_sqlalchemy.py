"""Helpers shared by the SQLAlchemy instrumentor tests (imported, not a pytest conftest).

The PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth, database ``test``) and skip,
naming how to start it, when it is not there. Tables get a per-run suffix so concurrent runs
against the shared server do not collide.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from otel_sentry_biz import attributes as attr
from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/test"
PG_ASYNC_URL = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/test"
PG_SKIP = (
    f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}; start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
)
_pg_up: bool | None = None


def require_postgresql() -> None:
    """Skip the calling test when the local PostgreSQL server does not answer."""
    global _pg_up
    if _pg_up is None:
        try:
            socket.create_connection((PG_HOST, PG_PORT), timeout=1).close()
            engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()
            _pg_up = True
        except Exception:
            _pg_up = False
    if not _pg_up:
        pytest.skip(PG_SKIP)


def suffix() -> str:
    return uuid.uuid4().hex[:8]


def add_sleep_function(engine: sa.Engine) -> None:
    """SQLite gets ``sleep_ms(n)``; PostgreSQL has ``pg_sleep``."""
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _register(dbapi_connection, _record):
            dbapi_connection.create_function("sleep_ms", 1, lambda ms: time.sleep(ms / 1000) or 0)


def sleep_sql(engine: sa.Engine, ms: int) -> str:
    if engine.dialect.name == "sqlite":
        return f"SELECT sleep_ms({ms})"
    return f"SELECT pg_sleep({ms / 1000})"


class Models:
    """A users/addresses schema with lazy-loaded addresses (the N+1 classic), per run."""

    def __init__(self) -> None:
        tag = suffix()

        class Base(DeclarativeBase):
            pass

        class User(Base):
            __tablename__ = f"users_{tag}"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(sa.String(50), unique=True)
            addresses: Mapped[list[Address]] = relationship(lazy="select")

        class Address(Base):
            __tablename__ = f"addresses_{tag}"
            id: Mapped[int] = mapped_column(primary_key=True)
            user_id: Mapped[int] = mapped_column(sa.ForeignKey(User.id))
            email: Mapped[str] = mapped_column(sa.String(100))

        self.Base, self.User, self.Address = Base, User, Address
        self.users, self.addresses = User.__table__, Address.__table__


@contextmanager
def schema(engine: sa.Engine, users: int = 0) -> Iterator[Models]:
    """Create the tables (and ``users`` users with one address each); drop them afterwards."""
    models = Models()
    models.Base.metadata.create_all(engine)
    try:
        if users:
            with engine.begin() as conn:
                conn.execute(
                    models.users.insert(), [{"id": i, "name": f"user{i}"} for i in range(users)]
                )
                conn.execute(
                    models.addresses.insert(),
                    [{"user_id": i, "email": f"u{i}@example.com"} for i in range(users)],
                )
        yield models
    finally:
        models.Base.metadata.drop_all(engine)


@contextmanager
def instrumented(**kwargs) -> Iterator[SQLAlchemyInstrumentor]:
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument(**kwargs)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def client_spans(exporter) -> list:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]


def writes(exporter) -> list[tuple[str, str | None, int | None]]:
    """(``db.operation.name``, ``db.collection.name``, ``db.operation.batch.size``) of each
    statement span that inserts, updates or deletes, in order."""
    return [
        (
            span.attributes["db.operation.name"],
            span.attributes.get("db.collection.name"),
            span.attributes.get("db.operation.batch.size"),
        )
        for span in client_spans(exporter)
        if span.attributes.get("db.operation.name", "").endswith(("INSERT", "UPDATE", "DELETE"))
    ]


def violations(span, rule: str | None = None) -> list[dict]:
    return [
        dict(event.attributes)
        for event in span.events
        if event.name == attr.VIOLATION_EVENT
        and (rule is None or event.attributes[attr.VIOLATION_RULE] == rule)
    ]


def exceptions(span) -> list[dict]:
    return [dict(event.attributes) for event in span.events if event.name == attr.EXCEPTION_EVENT]
