"""SQLAlchemyInstrumentor on real SQLite and PostgreSQL engines: the spans a user would see."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import otel_sentry_biz as biz
from otel_sentry_biz import attributes as attr
from otel_sentry_biz.sentry.events import CATEGORY_TAG, EventDefaults, EventFactory
from otel_sentry_biz.sentry.segments import SegmentAssembler
from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor
from otel_sentry_biz_instrumentors.sqlalchemy.statement import analyse
from tests.instrumentors.conftest_sqlalchemy import (
    PG_URL,
    add_sleep_function,
    client_spans,
    exceptions,
    instrumented,
    require_postgresql,
    schema,
    sleep_sql,
    violations,
    writes,
)

ORIGINAL_RAW_CONNECTION = vars(Engine)["raw_connection"]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "postgresql":
        require_postgresql()
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sa.create_engine(url)
    add_sleep_function(engine)
    yield engine
    engine.dispose()


def _sentry_events(exporter) -> dict[str, list[dict]]:
    factory = EventFactory(EventDefaults())
    assembler = SegmentAssembler()
    out: dict[str, list[dict]] = {"error": [], "violation": []}
    for segment in assembler.add(exporter.get_finished_spans()) + assembler.drain():
        out["error"] += factory.errors(segment)
        out["violation"] += factory.violations(segment)
    return out


def test_statement_span_follows_stable_semconv_under_the_callers_span(engine, finished, tracer):
    with schema(engine) as models, instrumented():
        table = models.users.name
        with biz.context(customer="ACME"), tracer.start_as_current_span("request"):
            with engine.connect() as conn:
                conn.execute(sa.text(f"SELECT id, name FROM {table} WHERE name = 'bob' AND id > 5"))

    (span,) = client_spans(finished)
    request = next(s for s in finished.get_finished_spans() if s.name == "request")
    assert span.name == f"SELECT {table}"
    assert span.parent.span_id == request.context.span_id
    expected = {
        "db.system.name": engine.dialect.name,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.summary": f"SELECT {table}",
        "db.query.text": f"SELECT id, name FROM {table} WHERE name = ? AND id > ?",
        "biz.customer": "ACME",
    }
    if engine.dialect.name == "postgresql":
        expected.update(
            {"db.namespace": "test", "server.address": "127.0.0.1", "server.port": 5432}
        )
    else:
        expected["db.namespace"] = engine.url.database
    assert {key: span.attributes.get(key) for key in expected} == expected
    assert not {"db.statement", "db.system", "db.name"} & set(span.attributes)


@pytest.mark.parametrize("how", ["argument", "variable"])
def test_literals_are_kept_only_when_asked(engine, finished, monkeypatch, how):
    statement = "SELECT 1 WHERE 'x' = 'x'"
    if how == "variable":
        monkeypatch.setenv("OTEL_SENTRY_BIZ_SQL_LITERALS", "true")
    with instrumented(**({"capture_literals": True} if how == "argument" else {})):
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    with instrumented(capture_literals=False):  # the argument wins over the variable
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)

    texts = [span.attributes["db.query.text"] for span in client_spans(finished)]
    assert texts == [statement, "SELECT ? WHERE ? = ?"]


def test_batches_and_rows_are_reported(engine, finished):
    with schema(engine) as models, instrumented():
        table = models.users.name
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"INSERT INTO {table} (id, name) VALUES (:id, :name)"),
                [{"id": i, "name": f"n{i}"} for i in range(3)],
            )
            conn.execute(sa.text(f"UPDATE {table} SET name = name || '!' WHERE id < 2"))
            conn.execute(sa.text(f"SELECT * FROM {table}")).all()

    insert, update, select = client_spans(finished)
    assert insert.name == f"BATCH INSERT {table}"
    assert insert.attributes["db.operation.batch.size"] == 3
    assert insert.attributes["db.operation.name"] == "BATCH INSERT"
    assert update.attributes["sqlalchemy.affected_rows"] == 2
    if engine.dialect.name == "postgresql":  # SQLite does not know before the rows are read
        assert select.attributes["db.response.returned_rows"] == 3


#: ORM inserts of rows whose ids the database assigns: SQLite runs one cursor execution per row
#: (insertmanyvalues cannot batch them there), psycopg2 one many-row INSERT.
ORM_INSERT_EXECUTIONS = {"sqlite": 5, "postgresql": 1}


def test_orm_inserts_are_batches_only_when_several_parameter_sets_are_sent(engine, finished):
    with schema(engine, users=1) as models, instrumented():  # user 0 has one address already
        table = models.addresses.name
        with Session(engine) as session:
            session.add_all(models.Address(user_id=0, email=f"a{i}@example.com") for i in range(5))
            session.flush()
            session.add(models.Address(user_id=0, email="alone@example.com"))
            session.flush()
            for address in session.scalars(sa.select(models.Address)):
                address.email += ".org"
            session.commit()
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(models.addresses))
            assert stored.scalar() == 7

    # each ORM insert is one statement, never a batch; the 7 changed rows one executemany()
    inserts = ORM_INSERT_EXECUTIONS[engine.dialect.name] + 1
    assert writes(finished) == [("INSERT", table, None)] * inserts + [("BATCH UPDATE", table, 7)]
    (update,) = [s for s in client_spans(finished) if "UPDATE" in s.name]
    assert update.name == f"BATCH UPDATE {table}"
    assert update.attributes["db.query.summary"] == f"BATCH UPDATE {table}"


def test_slow_query_is_a_performance_violation(engine, finished):
    with instrumented(slow_query_ms=40):
        with engine.connect() as conn:
            conn.exec_driver_sql(sleep_sql(engine, 60))
            conn.exec_driver_sql("SELECT 1")

    slow, fast = client_spans(finished)
    (found,) = violations(slow)
    assert found[attr.VIOLATION_RULE] == "slow_query"
    assert found[attr.VIOLATION_CATEGORY] == "performance"
    assert found[attr.VIOLATION_IMPACT] == "LOW"
    assert found["biz.violation.data.duration_ms"] >= 40
    assert found[attr.VIOLATION_GROUP] == analyse(sleep_sql(engine, 60)).group
    assert violations(fast) == []


def test_n_plus_one_reported_once_per_trace_on_the_query_reaching_the_threshold(
    engine, finished, tracer
):
    with schema(engine, users=5) as models, instrumented(n_plus_one=3, impact="MEDIUM"):
        with Session(engine) as session, tracer.start_as_current_span("list users"):
            for user in session.scalars(sa.select(models.User).order_by(models.User.id)):
                assert len(user.addresses) == 1  # one lazy load per user: 5 in one trace
        for request in ("request a", "request b"):  # 2 + 2 in different traces: fine
            with Session(engine) as session, tracer.start_as_current_span(request):
                for user_id in (1, 2):
                    session.get(models.User, user_id).addresses  # noqa: B018

    found = [(span, v) for span in client_spans(finished) for v in violations(span)]
    assert len(found) == 1
    span, violation = found[0]
    loads = [s for s in client_spans(finished) if s.name == f"SELECT {models.addresses.name}"]
    assert span is loads[2]  # the third load in "list users"
    assert violation[attr.VIOLATION_RULE] == "n_plus_one"
    assert violation[attr.VIOLATION_IMPACT] == "MEDIUM"
    assert violation["biz.violation.data.executions"] == 3
    assert models.addresses.name in violation[attr.VIOLATION_MESSAGE]

    (issue,) = _sentry_events(finished)["violation"]
    assert issue["tags"][CATEGORY_TAG] == "performance"
    assert issue["fingerprint"][-1] == violation[attr.VIOLATION_GROUP]


def test_failed_statement_recorded_once_and_reported_once_to_sentry(engine, finished, tracer):
    with schema(engine, users=1) as models, instrumented():
        table = models.users.name
        with pytest.raises(sa.exc.IntegrityError), tracer.start_as_current_span("request"):
            with engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO {table} (id, name) VALUES (7, 'user0')"))

    (span,) = [s for s in client_spans(finished) if s.name == f"INSERT {table}"]
    assert span.status.status_code is StatusCode.ERROR
    (recorded,) = exceptions(span)
    assert recorded["exception.type"] == "sqlalchemy.exc.IntegrityError"
    assert recorded[attr.CATEGORY] == "data_quality"  # the core classifier's call, not ours
    assert span.attributes["error.type"] == "sqlalchemy.exc.IntegrityError"
    if engine.dialect.name == "postgresql":
        assert span.attributes["db.response.status_code"] == "23505"

    (error,) = _sentry_events(finished)["error"]  # the request span's re-record is merged
    assert error["tags"][CATEGORY_TAG] == "data_quality"
    assert error["contexts"]["trace"]["span_id"] == format(span.context.span_id, "016x")


def test_pool_exhaustion_is_a_system_resource_error(engine, finished, tracer):
    pooled = sa.create_engine(engine.url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    try:
        with instrumented(), pooled.connect():
            with pytest.raises(sa.exc.TimeoutError), tracer.start_as_current_span("request"):
                pooled.connect()
    finally:
        pooled.dispose()

    (span,) = client_spans(finished)
    assert span.name == "connect"
    assert span.attributes["db.system.name"] == engine.dialect.name
    assert span.attributes[attr.CATEGORY] == "system_resource"
    (recorded,) = exceptions(span)
    assert recorded["exception.type"] == "sqlalchemy.exc.TimeoutError"
    (error,) = _sentry_events(finished)["error"]
    assert error["tags"][CATEGORY_TAG] == "system_resource"


def test_refused_connection_is_a_system_resource_error(finished, tracer):
    refused = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/test")
    with instrumented():
        with pytest.raises(sa.exc.OperationalError), tracer.start_as_current_span("request"):
            refused.connect()

    (span,) = client_spans(finished)
    assert (span.name, span.attributes["server.port"]) == ("connect", 1)
    assert span.attributes[attr.CATEGORY] == "system_resource"
    assert len(exceptions(span)) == 1
    (error,) = _sentry_events(finished)["error"]
    assert error["tags"][CATEGORY_TAG] == "system_resource"


def test_statement_timeout_is_a_system_resource_error(finished):
    require_postgresql()
    engine = sa.create_engine(PG_URL)
    try:
        with instrumented(), engine.connect() as conn:
            conn.exec_driver_sql("SET statement_timeout = 20")
            with pytest.raises(sa.exc.OperationalError):
                conn.exec_driver_sql("SELECT pg_sleep(2)")
    finally:
        engine.dispose()

    span = client_spans(finished)[-1]
    assert span.attributes["db.response.status_code"] == "57014"
    assert span.attributes[attr.CATEGORY] == "system_resource"
    assert exceptions(span)[0][attr.CATEGORY] == "system_resource"


def test_stale_connection_replaced_by_pre_ping_is_not_an_error(finished):
    require_postgresql()
    engine = sa.create_engine(PG_URL, pool_pre_ping=True, pool_size=1)
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with instrumented(), engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    finally:
        engine.dispose()

    (span,) = client_spans(finished)
    assert span.status.status_code is StatusCode.UNSET
    assert exceptions(span) == []


def test_engines_created_before_and_after_instrument_and_in_threads(tmp_path, finished, tracer):
    before = sa.create_engine(f"sqlite:///{tmp_path / 'before.db'}")
    with instrumented():
        after = sa.create_engine(f"sqlite:///{tmp_path / 'after.db'}")

        def query(engine: sa.Engine) -> None:
            with tracer.start_as_current_span("worker"), engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

        workers = [threading.Thread(target=query, args=(e,)) for e in (before, after)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    spans = finished.get_finished_spans()
    parents = {s.context.span_id for s in spans if s.name == "worker"}
    assert [s.parent.span_id in parents for s in client_spans(finished)] == [True, True]


def test_suppressed_instrumentation_records_nothing(engine, finished):
    with instrumented(slow_query_ms=1), suppress_instrumentation(), engine.connect() as conn:
        conn.exec_driver_sql(sleep_sql(engine, 5))
    assert finished.get_finished_spans() == ()


def test_instrument_twice_and_uninstrument_leave_sqlalchemy_as_it_was(engine, finished):
    listeners = len(engine.dispatch.before_cursor_execute)
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument()
    instrumentor.instrument()  # warns, changes nothing
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert len(client_spans(finished)) == 1

    events = instrumentor._events
    instrumentor.uninstrument()
    instrumentor.uninstrument()
    assert vars(Engine)["raw_connection"] is ORIGINAL_RAW_CONNECTION
    assert len(engine.dispatch.before_cursor_execute) == listeners
    for identifier, method in events.LISTENERS:
        assert not event.contains(Engine, identifier, getattr(events, method))
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert len(client_spans(finished)) == 1


def test_bad_settings_fail_at_instrument_naming_the_fix(monkeypatch):
    instrumentor = SQLAlchemyInstrumentor()
    with pytest.raises(biz.ConfigError, match="got slow_query: accepted keywords"):
        instrumentor.instrument(slow_query=100)
    monkeypatch.setenv("OTEL_SENTRY_BIZ_SQL_N_PLUS_ONE", "1")
    with pytest.raises(biz.ConfigError, match="OTEL_SENTRY_BIZ_SQL_N_PLUS_ONE='1' is invalid"):
        instrumentor.instrument()
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert vars(Engine)["raw_connection"] is ORIGINAL_RAW_CONNECTION


def test_instrumentation_dependencies_name_sqlalchemy():
    assert list(SQLAlchemyInstrumentor().instrumentation_dependencies()) == [
        "sqlalchemy >= 1.4, < 3"
    ]


def _run(script: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_instrumentor_does_not_import_sqlalchemy():
    out = _run(
        """
        import sys
        from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor
        SQLAlchemyInstrumentor().instrumentation_dependencies()
        print("sqlalchemy" in sys.modules)
        """
    )
    assert out.strip() == "False"


def test_old_attribute_names_too_under_database_dup():
    out = _run(
        """
        import sqlalchemy as sa
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        SQLAlchemyInstrumentor().instrument(tracer_provider=provider)
        with sa.create_engine("sqlite://").connect() as conn:
            conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        (span,) = exporter.get_finished_spans()
        print(sorted(k for k in span.attributes if k.startswith("db.")))
        """,
        OTEL_SEMCONV_STABILITY_OPT_IN="http,database/dup",
    )
    assert out.strip() == str(
        sorted(
            [
                "db.collection.name",
                "db.operation",
                "db.operation.name",
                "db.query.summary",
                "db.query.text",
                "db.sql.table",
                "db.statement",
                "db.system",
                "db.system.name",
            ]
        )
    )
