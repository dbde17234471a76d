"""SQLAlchemyInstrumentor on async engines: aiosqlite and asyncpg against the local server."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from opentelemetry.trace import StatusCode

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
