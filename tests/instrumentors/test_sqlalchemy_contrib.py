"""With contrib's SQLAlchemy instrumentor active too: one span per statement, ours enriching."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from otel_sentry_biz import attributes as attr
from tests.instrumentors.conftest_sqlalchemy import (
    PG_URL,
    client_spans,
    exceptions,
    instrumented,
    require_postgresql,
    schema,
    violations,
)

contrib = pytest.importorskip("opentelemetry.instrumentation.sqlalchemy")
CONTRIB_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
ORIGINAL_RAW_CONNECTION = vars(Engine)["raw_connection"]
ORIGINAL_CONNECT = vars(Engine)["connect"]
ORIGINAL_CREATE_ENGINE = sa.create_engine


@contextmanager
def contrib_instrumented():
    instrumentor = contrib.SQLAlchemyInstrumentor()
    # contrib declares sqlalchemy < 2.1; the check would refuse the installed 2.1
    instrumentor.instrument(skip_dep_check=True)
    try:
        yield
    finally:
        instrumentor.uninstrument()


@contextmanager
def both(order: str, **ours):
    if order == "ours first":
        with instrumented(**ours), contrib_instrumented():
            yield
    else:
        with contrib_instrumented(), instrumented(**ours):
            yield


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "postgresql":
        require_postgresql()
        return PG_URL
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.mark.parametrize("order", ["ours first", "contrib first"])
def test_one_span_per_statement_enriched_with_our_judgements(order, url, finished, tracer):
    with both(order, n_plus_one=2):
        engine = sa.create_engine(url)  # contrib instruments engines it creates
        with schema(engine, users=1) as models:
            finished.clear()
            table = models.users.name
            with tracer.start_as_current_span("request"), engine.connect() as conn:
                for user_id in (0, 1):
                    conn.execute(sa.text(f"SELECT * FROM {table} WHERE id = :id"), {"id": user_id})
                with pytest.raises(sa.exc.IntegrityError):
                    conn.execute(sa.text(f"INSERT INTO {table} (id, name) VALUES (0, 'dup')"))
        engine.dispose()

    request = next(s for s in finished.get_finished_spans() if s.name == "request")
    statements = [
        s
        for s in client_spans(finished)
        if s.parent is not None
        and s.parent.span_id == request.context.span_id
        and s.name != "connect"  # contrib's span around engine.connect()
    ]
    assert len(statements) == 3  # no second span from us
    assert {s.instrumentation_scope.name for s in statements} == {CONTRIB_SCOPE}
    first, second, failed = statements
    assert first.attributes["db.collection.name"] == table  # contrib does not record it
    assert "db.statement" in first.attributes  # contrib's own attributes stay as they were
    assert [len(violations(s, "n_plus_one")) for s in (first, second)] == [0, 1]
    (recorded,) = exceptions(failed)  # contrib records none; we record it once
    assert recorded["exception.type"] == "sqlalchemy.exc.IntegrityError"
    assert failed.attributes["error.type"] == "sqlalchemy.exc.IntegrityError"


@pytest.mark.parametrize("order", ["ours first", "contrib first"])
def test_pool_exhaustion_categorises_contribs_connect_span(order, tmp_path, finished, tracer):
    with both(order):
        engine = sa.create_engine(
            f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.05
        )
        with engine.connect():
            finished.clear()
            with pytest.raises(sa.exc.TimeoutError):
                engine.connect()
        engine.dispose()

    (span,) = client_spans(finished)  # contrib's connect span, no second one from us
    assert span.instrumentation_scope.name == CONTRIB_SCOPE
    assert span.attributes[attr.CATEGORY] == "system_resource"
    assert [e["exception.type"] for e in exceptions(span)] == ["sqlalchemy.exc.TimeoutError"]


def test_both_uninstrumented_leave_sqlalchemy_as_it_was(tmp_path, finished):
    with both("ours first"):
        pass
    with both("contrib first"):
        pass
    assert vars(Engine)["raw_connection"] is ORIGINAL_RAW_CONNECTION
    assert vars(Engine)["connect"] is ORIGINAL_CONNECT
    assert sa.create_engine is ORIGINAL_CREATE_ENGINE
    with sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}").connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert finished.get_finished_spans() == ()
