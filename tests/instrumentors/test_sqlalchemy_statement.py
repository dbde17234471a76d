"""The pure parts of the SQLAlchemy instrumentor: statements, error categories, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_sentry_biz import ConfigError, Impact
from otel_sentry_biz.impact import Category
from otel_sentry_biz_instrumentors.sqlalchemy.errors import category_of
from otel_sentry_biz_instrumentors.sqlalchemy.performance import RepeatCounter
from otel_sentry_biz_instrumentors.sqlalchemy.semconv import system_name, with_old_names
from otel_sentry_biz_instrumentors.sqlalchemy.settings import VARIABLES, SQLSettings
from otel_sentry_biz_instrumentors.sqlalchemy.statement import analyse, sanitize


@pytest.mark.parametrize(
    ("statement", "sanitized"),
    [
        ("SELECT * FROM t WHERE a = 'x' AND b = 42", "SELECT * FROM t WHERE a = ? AND b = ?"),
        ("SELECT 'it''s', -1.5e3, .5, 0x1F", "SELECT ?, -?, ?, ?"),
        ("SELECT E'a\\'b', N'x', X'ff', B'101'", "SELECT ?, ?, ?, ?"),
        ("SELECT $$secret$$, $fn$ 1 $fn$", "SELECT ?, ?"),
        ('SELECT t1.c2, "col 3", `k9` FROM t1', 'SELECT t1.c2, "col 3", `k9` FROM t1'),
        (
            "SELECT * FROM t WHERE a = ? AND b = %s AND c = %(c)s AND d = :d AND e = $1::INT",
            "SELECT * FROM t WHERE a = ? AND b = %s AND c = %(c)s AND d = :d AND e = $1::INT",
        ),
        ("SELECT '2024-01-01'::date", "SELECT ?::date"),
        ("SELECT 'unterminated", "SELECT ?"),
        ("SELECT 1 -- keep 2\n", "SELECT ? -- keep 2\n"),
    ],
)
def test_literals_become_placeholders_and_everything_else_stays(statement, sanitized):
    assert sanitize(statement) == sanitized


@pytest.mark.parametrize(
    ("statement", "operation", "collection", "summary"),
    [
        ("SELECT a FROM users WHERE id = ?", "SELECT", "users", "SELECT users"),
        ('DELETE FROM "user" WHERE id = $1', "DELETE", "user", "DELETE user"),
        ("UPDATE public.users SET a = 1", "UPDATE", "public.users", "UPDATE public.users"),
        ("INSERT INTO t (a) SELECT a FROM s", "INSERT", None, "INSERT t SELECT s"),
        ("SELECT * FROM a JOIN b ON a.id = b.id", "SELECT", None, "SELECT a b"),
        ("SELECT * FROM a, b", "SELECT", None, "SELECT a b"),
        ("SELECT EXTRACT(YEAR FROM d) FROM orders", "SELECT", "orders", "SELECT orders"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "SELECT", "x", "SELECT SELECT x"),
        ("SELECT * FROM t FOR UPDATE", "SELECT", "t", "SELECT t"),
        ("INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 1", "INSERT", "t", None),
        ("CREATE TABLE IF NOT EXISTS items (id INT)", "CREATE", "items", "CREATE items"),
        ("select * from Users u", "select", "Users", "select Users"),
        ("SELECT 1; SELECT 2", None, None, None),
        ("VALUES (1)", None, None, None),
    ],
)
def test_operation_and_tables_come_from_one_statement(statement, operation, collection, summary):
    query = analyse(statement)
    assert (query.operation, query.collection) == (operation, collection)
    if summary is not None or operation is None:
        assert query.summary == summary


def test_statement_shapes_ignore_values_lists_comments_and_param_styles():
    same = [
        "SELECT * FROM t WHERE id IN (1, 2, 3) /* request 7 */",
        "SELECT * FROM t WHERE id IN (?)",
        "SELECT  *  FROM t WHERE id IN ($1::INTEGER, $2::INTEGER)",
        "SELECT * FROM t WHERE id IN (%(id_1)s, %(id_2)s)",
    ]
    assert len({analyse(s).shape for s in same}) == 1
    assert len({analyse(s).group for s in same}) == 1
    assert (
        analyse("SELECT * FROM t WHERE a > 1").shape != analyse("SELECT * FROM t WHERE a = 1").shape
    )
    rows = analyse("INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)").shape
    assert rows == analyse("INSERT INTO t (a, b) VALUES (?, ?)").shape


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "flags", "category"),
    [
        (
            _DriverError("canceling statement due to statement timeout", "57014"),
            {},
            "system_resource",
        ),
        (_DriverError("sorry, too many clients already", "53300"), {}, "system_resource"),
        (_DriverError("terminating connection", "08006"), {}, "system_resource"),
        (_DriverError("could not obtain lock", "55P03"), {}, "system_resource"),
        (_DriverError("password authentication failed", "28P01"), {}, "security"),
        (_DriverError("duplicate key value", "23505"), {}, None),
        (_DriverError("relation does not exist", "42P01"), {}, None),
        (_DriverError("database is locked"), {}, "system_resource"),
        (_DriverError("Connection refused"), {"connecting": True}, "system_resource"),
        (_DriverError("server closed the connection unexpectedly"), {}, "system_resource"),
        (_DriverError("something"), {"disconnect": True}, "system_resource"),
        (_DriverError("no such table: x"), {}, None),
    ],
)
def test_resource_errors_are_system_resource_and_others_left_to_the_classifier(
    error, flags, category
):
    found = category_of(error, **flags)
    assert (found.value if found else None) == category


def test_psycopg2_pgcode_is_read_too():
    error = Exception("timeout")
    error.pgcode = "57014"
    assert category_of(error) is Category.SYSTEM_RESOURCE


def test_settings_come_from_arguments_then_variables_then_defaults():
    environ = {"OTEL_SENTRY_BIZ_SQL_SLOW_MS": "250", "OTEL_SENTRY_BIZ_SQL_IMPACT": "high"}
    settings = SQLSettings.load({"slow_query_ms": 100, "n_plus_one": None}, environ=environ)
    assert settings == SQLSettings(slow_query_ms=100.0, n_plus_one=10, impact=Impact.HIGH)
    assert SQLSettings.load({}, environ={}) == SQLSettings()


@pytest.mark.parametrize(
    ("arguments", "environ", "message"),
    [
        ({}, {"OTEL_SENTRY_BIZ_SQL_LITERALS": "maybe"}, "OTEL_SENTRY_BIZ_SQL_LITERALS='maybe'"),
        ({"slow_query_ms": -1}, {}, "slow_query_ms=-1 is invalid"),
        ({"n_plus_one": 2.5}, {}, "whole number"),
        ({}, {"OTEL_SENTRY_BIZ_SQL_N_PLUS_ONE": "1"}, "2 or more, or 0"),
        ({"impact": "huge"}, {}, "unknown impact 'huge'"),
    ],
)
def test_bad_settings_name_the_argument_or_variable(arguments, environ, message):
    with pytest.raises(ConfigError, match=message):
        SQLSettings.load(arguments, environ=environ)


def test_old_names_are_added_only_when_asked():
    stable = {"db.system.name": "microsoft.sql_server", "db.query.text": "SELECT ?", "x": 1}
    assert with_old_names(stable, False) == stable
    assert with_old_names(stable, True) == {
        **stable,
        "db.system": "mssql",
        "db.statement": "SELECT ?",
    }
    assert system_name("mssql") == "microsoft.sql_server"
    assert system_name("postgresql") == "postgresql"


def test_repeat_counter_is_per_trace_and_bounded():
    counter = RepeatCounter(max_traces=2, max_shapes=1)
    assert [counter.add(1, "a"), counter.add(1, "a"), counter.add(2, "a")] == [1, 2, 1]
    assert counter.add(1, "b") == 0  # trace 1 holds its one shape already
    counter.add(3, "a")  # forgets the least recently active trace: 2
    assert counter.add(1, "a") == 3
    assert counter.add(2, "a") == 1


def test_the_docs_list_every_setting_with_its_default():
    doc = (Path(__file__).parents[2] / "docs" / "instrumentors" / "sqlalchemy.md").read_text()
    defaults = SQLSettings()
    for variable in VARIABLES:
        (row,) = [line for line in doc.splitlines() if f"`{variable.name}`" in line]
        default = getattr(defaults, variable.field)
        shown = {bool: lambda v: str(v).lower(), float: lambda v: f"{v:g}"}.get(
            type(default), lambda v: getattr(v, "value", v)
        )(default)
        assert row.startswith(f"| `{variable.field}` | `{variable.name}` | `{shown}` |"), row
