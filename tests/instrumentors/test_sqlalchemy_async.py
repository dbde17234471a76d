"""SQLAlchemyInstrumentor on async engines: aiosqlite and asyncpg against the local server."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from opentelemetry.trace import StatusCode
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import otel_sentry_biz as biz
from otel_sentry_biz import attributes as attr
from tests.instrumentors.conftest_sqlalchemy import (
    PG_ASYNC_URL,
    client_spans,
    exceptions,
    instrumented,
    require_postgresql,
    suffix,
    violations,
    writes,
)

asyncio_ext = pytest.importorskip("sqlalchemy.ext.asyncio")


@pytest.fixture(params=["aiosqlite", "asyncpg"])
def url(request, tmp_path):
    pytest.importorskip(request.param)
    if request.param == "asyncpg":
        require_postgresql()
        return PG_ASYNC_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"


def test_async_statements_parent_under_the_awaiting_task_and_are_judged(url, finished, tracer):
    table = f"items_{suffix()}"

    async def main() -> None:
        created_before = asyncio_ext.create_async_engine(url)
        async with created_before.begin() as conn:
            await conn.execute(sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)"))
        with instrumented(n_plus_one=3):
            created_after = asyncio_ext.create_async_engine(url)

            async def request(name: str, engine) -> None:
                with biz.context(order=name), tracer.start_as_current_span(name):
                    async with engine.connect() as conn:
                        for item in range(3):
                            await conn.execute(
                                sa.text(f"SELECT id FROM {table} WHERE id = :id"), {"id": item}
                            )
                        with pytest.raises(sa.exc.DBAPIError):
                            await conn.execute(sa.text("SELECT * FROM missing_table"))

            # two concurrent tasks: each statement parents under its own task's span
            await asyncio.gather(
                request("task a", created_before), request("task b", created_after)
            )
        async with created_before.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE {table}"))
        await created_before.dispose()
        await created_after.dispose()

    asyncio.run(main())

    spans = finished.get_finished_spans()
    tasks = {s.context.span_id: s.name for s in spans if s.name.startswith("task")}
    by_task: dict[str, list] = {"task a": [], "task b": []}
    for span in client_spans(finished):
        by_task[tasks[span.parent.span_id]].append(span)
    for name, statements in by_task.items():
        selects, failed = statements[:3], statements[3]
        assert [s.name for s in selects] == [f"SELECT {table}"] * 3
        assert {s.attributes["biz.order"] for s in statements} == {name}
        assert [len(violations(s, "n_plus_one")) for s in selects] == [0, 0, 1]
        assert failed.status.status_code is StatusCode.ERROR
        assert len(exceptions(failed)) == 1
    system = "postgresql" if "asyncpg" in url else "sqlite"
    assert {s.attributes["db.system.name"] for s in client_spans(finished)} == {system}


def test_async_pool_exhaustion_is_a_system_resource_error(url, finished):
    async def main() -> None:
        engine = asyncio_ext.create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=0.05
        )
        with instrumented():
            async with engine.connect():
                with pytest.raises(sa.exc.TimeoutError):
                    async with engine.connect():
                        pass
        await engine.dispose()

    asyncio.run(main())

    (span,) = client_spans(finished)
    assert span.name == "connect"
    assert span.attributes[attr.CATEGORY] == "system_resource"
    assert exceptions(span)[0]["exception.type"] == "sqlalchemy.exc.TimeoutError"


def _tagged_items_model(dialect: str):
    """Items whose first inserted column holds a list (a PostgreSQL ARRAY; JSON, sent as text,
    on SQLite): a many-row INSERT's flattened values then start with a list."""

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = f"items_{suffix()}"
        id: Mapped[int] = mapped_column(primary_key=True)
        tags: Mapped[list[int]] = mapped_column(
            sa.ARRAY(sa.Integer) if dialect == "postgresql" else sa.JSON
        )
        name: Mapped[str] = mapped_column(sa.String(20))

    return Base, Item


def test_async_orm_inserts_are_batches_only_when_several_parameter_sets_are_sent(url, finished):
    dialect = "postgresql" if "asyncpg" in url else "sqlite"
    Base, Item = _tagged_items_model(dialect)
    table = Item.__tablename__

    async def main() -> None:
        engine = asyncio_ext.create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            with instrumented():
                async with asyncio_ext.AsyncSession(engine) as session:
                    session.add_all(Item(tags=[i, i + 1], name=f"item{i}") for i in range(4))
                    await session.flush()
                    for item in (await session.scalars(sa.select(Item))).all():
                        item.name += "!"
                    await session.commit()
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
            await engine.dispose()

    asyncio.run(main())

    # each ORM insert is one statement, never a batch (SQLite: one per row; asyncpg: one
    # many-row INSERT whose flattened values start with a list); the 4 changed rows one
    # executemany()
    inserts = 4 if dialect == "sqlite" else 1
    assert writes(finished) == [("INSERT", table, None)] * inserts + [("BATCH UPDATE", table, 4)]
    (update,) = [s for s in client_spans(finished) if "UPDATE" in s.name]
    assert update.name == f"BATCH UPDATE {table}"
