"""SQL statements keep their shape and lose their literals."""

from __future__ import annotations

import pytest

from otel_sentry_biz.scrub import scrub_sql
from otel_sentry_biz.scrub.sql import is_sql_op


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "SELECT id FROM customers WHERE email = 'pat@example.com' AND pin = 1234",
            "SELECT id FROM customers WHERE email = %s AND pin = %s",
        ),
        ("UPDATE t SET note = 'it''s here' WHERE id = -7", "UPDATE t SET note = %s WHERE id = %s"),
        (
            "INSERT INTO t (a, b) VALUES (1, 2.5), (3e2, 0xFF)",
            "INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s)",
        ),
        (
            "SELECT * FROM t WHERE n = N'Ana' OR e = E'x\\n'",
            "SELECT * FROM t WHERE n = %s OR e = %s",
        ),
        ("SELECT * FROM t WHERE name='Ana'", "SELECT * FROM t WHERE name=%s"),
        ("SELECT * FROM t WHERE s = 'cut off", "SELECT * FROM t WHERE s = %s"),
        ("SELECT * FROM t LIMIT 10 OFFSET 20", "SELECT * FROM t LIMIT %s OFFSET %s"),
    ],
)
def test_literals_become_placeholders(statement, expected):
    assert scrub_sql(statement) == expected


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM orders WHERE id = $1",
        "SELECT * FROM orders WHERE id = %s AND c = :customer_1",
        "SELECT col2x, t1.a FROM schema1.t1",
        'SELECT "col 2" FROM "Table"',
        "SELECT * FROM t WHERE a = ?",
    ],
)
def test_identifiers_and_bind_parameters_stay(statement):
    assert scrub_sql(statement) == statement


def test_scrubbing_twice_changes_nothing_more():
    once = scrub_sql("SELECT * FROM t WHERE a = 'x' AND b = 2")
    assert scrub_sql(once) == once


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("db", True),
        ("db.sql.query", True),
        ("db.redis", False),
        ("http.client", False),
        (None, False),
    ],
)
def test_which_span_ops_hold_sql(op, expected):
    assert is_sql_op(op) is expected
