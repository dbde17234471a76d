"""What a SQL statement is, read from its text: sanitised text, operation, tables, shape.

>>> q = analyse("SELECT * FROM users WHERE email = 'bob@example.com' AND id IN (1, 2, 3)")
>>> q.text
'SELECT * FROM users WHERE email = ? AND id IN (?, ?, ?)'
>>> q.operation, q.collection, q.summary
('SELECT', 'users', 'SELECT users')

One pass of a small tokenizer: string and number literals become ``?`` (the semantic
conventions' placeholder); identifiers, keywords and bind parameters (``?``, ``%s``,
``%(name)s``, ``:name``, ``$1``) stay, so a parameterised statement keeps its text. The
operation and the tables come only from a single statement and only from query levels (a
``FROM`` inside ``EXTRACT(YEAR FROM d)`` is not a table). The *shape* is what N+1 detection
counts: placeholders for every value, comments dropped, lists of placeholders collapsed, so
``IN (?, ?)`` and ``IN ($1, $2, $3)`` are the same statement.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Optional

PLACEHOLDER = "?"

_TOKEN = re.compile(
    r"""
    (?P<comment>--[^\r\n]*|/\*.*?(?:\*/|\Z))
  | (?P<literal>
        [Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z)            # E'...' (backslash escapes)
      | [NnXxBb]?'(?:[^']|'')*(?:'|\Z)             # '...', N'...', X'...'
      | \$\$.*?(?:\$\$|\Z)                          # $$...$$
      | \$(?P<tag>[A-Za-z_]\w*)\$.*?(?:\$(?P=tag)\$|\Z)  # $body$...$body$
      | 0[xX][0-9a-fA-F]+
      | (?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?
    )
  | (?P<cast>::)
  | (?P<param>%\([^)]*\)s|%s|\$\d+|:\w+|\?)
  | (?P<quoted>"(?:[^"]|"")*"|`[^`]*`)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<punct>[(),;.])
    """,
    re.DOTALL | re.VERBOSE,
)

#: Leading keywords accepted as ``db.operation.name``.
OPERATIONS = frozenset(
    {
        *("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE"),
        *("CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "GRANT", "REVOKE"),
        *("BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"),
        *("SET", "SHOW", "EXPLAIN", "ANALYZE", "VACUUM", "PRAGMA", "CALL", "EXEC", "EXECUTE"),
        *("COPY", "LOCK", "LISTEN", "NOTIFY", "DECLARE", "FETCH", "CLOSE"),
    }
)
#: Operations that may follow ``WITH ...`` at the top level or open a subquery.
_DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
_QUERY_START = _DML | {"WITH"}
#: Keywords after which (at a query level) a table name comes.
_TABLE_BEFORE = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE"})
#: Words between a table keyword and the table: ``CREATE TABLE IF NOT EXISTS t``, ``FROM ONLY t``.
_TABLE_NOISE = frozenset({"IF", "NOT", "EXISTS", "ONLY", "LATERAL"})
#: Keywords that end a ``FROM a, b`` list.
_FROM_LIST_END = frozenset(
    {
        *("WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "INTERSECT"),
        *("EXCEPT", "ON", "USING", "JOIN", "WINDOW", "RETURNING", "FOR", "SET", "VALUES"),
        "FETCH",
    }
)
#: Words that follow a table keyword without being a table (``DO UPDATE SET``, ``FOR UPDATE``).
_NOT_TABLES = frozenset({"SET", "SELECT", "VALUES", "DEFAULT", "OF", "NOWAIT", "SKIP", "WHERE"})
#: A DML keyword after these words is a clause, not a statement (``FOR UPDATE``, ``ON DELETE``).
_NOT_STATEMENT_AFTER = frozenset({"FOR", "DO", "ON", "BEFORE", "AFTER", "OF", "INSTEAD"})
_SUMMARY_LIMIT = 255
#: Statements longer than this are analysed but not cached (the cache holds its keys).
_CACHE_LIMIT = 4096

_LIST = re.compile(r"\(\s*\?(?:\s*::\s*\w+)?(?:\s*,\s*\?(?:\s*::\s*\w+)?)*\s*\)")
_LISTS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")


@dataclass(frozen=True)
class Query:
    """One statement as the instrumentor reports it."""

    #: The statement with literal values replaced by ``?``.
    text: str
    #: ``SELECT``, ``INSERT``...; None when the statement is not one recognised operation.
    operation: Optional[str]
    #: The one table the statement touches; None for none or several (joins, subqueries).
    collection: Optional[str]
    #: Operations and tables in order of appearance (``SELECT orders users``): low cardinality.
    summary: Optional[str]
    #: Every value a placeholder, comments gone, lists collapsed: what N+1 detection counts.
    shape: str

    @property
    def group(self) -> str:
        """A short stable key of the shape: one Sentry issue per statement shape."""
        return hashlib.blake2b(self.shape.encode("utf-8", "replace"), digest_size=6).hexdigest()


def analyse(statement: str) -> Query:
    """The :class:`Query` of ``statement``; repeated statements are served from a cache."""
    if len(statement) > _CACHE_LIMIT:
        return _analyse(statement)
    return _cached(statement)


def sanitize(statement: str) -> str:
    """``statement`` with its string and number literals replaced by ``?``."""
    return analyse(statement).text


@functools.lru_cache(maxsize=1024)
def _cached(statement: str) -> Query:
    # The same few hundred statements run over and over: analysing each once keeps the
    # per-query cost of the instrumentor to a dictionary lookup.
    return _analyse(statement)


def _analyse(statement: str) -> Query:
    text: list[str] = []
    shape: list[str] = []
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _TOKEN.finditer(statement):
        kind = match.lastgroup or ""
        start, end = match.span()
        gap = statement[position:start]
        text.append(gap)
        shape.extend(gap.split())  # operators: ``a = ?`` and ``a > ?`` are different shapes
        if kind == "literal":
            text.append(PLACEHOLDER)
        else:
            text.append(match.group())
        position = end
        if kind == "comment":
            continue
        shape.append(PLACEHOLDER if kind in ("literal", "param") else match.group())
        tokens.append((kind, match.group()))
    text.append(statement[position:])
    operation, tables, summary = _structure(tokens)
    distinct = list(dict.fromkeys(tables))
    return Query(
        text="".join(text),
        operation=operation,
        collection=distinct[0] if len(distinct) == 1 else None,
        summary=summary,
        shape=_LISTS.sub("(?)", _LIST.sub("(?)", " ".join(shape))),
    )


class _Level:
    """One parenthesis level: a query (a subquery) or an expression, and its FROM list state."""

    __slots__ = ("in_from", "query")

    def __init__(self, query: bool) -> None:
        self.query = query
        self.in_from = False


def _structure(tokens: list[tuple[str, str]]) -> tuple[Optional[str], list[str], Optional[str]]:
    """Operation, tables and summary of one statement; nothing for several statements."""
    operation: Optional[str] = None
    tables: list[str] = []
    summary: list[str] = []
    levels = [_Level(query=True)]
    expect_table = False
    first_word = True
    with_query = False
    previous = ("", "")
    for index, (kind, value) in enumerate(tokens):
        before, previous = previous, (kind, value)
        level = levels[-1]
        if kind == "punct":
            if value == "(":
                levels.append(_Level(query=False))  # an expression until its first word says
                expect_table = False
            elif value == ")" and len(levels) > 1:
                levels.pop()
            elif value == ";" and any(k in ("word", "quoted") for k, _ in tokens[index + 1 :]):
                return None, [], None  # several statements: no one operation or table
            elif value == "," and level.in_from:
                expect_table = True
            continue
        upper = value.upper() if kind == "word" else ""
        if before == ("punct", "(") and upper in _QUERY_START:
            level.query = True
        if expect_table:
            expect_table = upper in _TABLE_NOISE  # CREATE TABLE IF NOT EXISTS t, FROM ONLY t
            if expect_table:
                continue
            if upper not in _NOT_TABLES:
                name = _table_name(tokens, index)
                if name:
                    tables.append(name)
                    summary.append(name)
                continue
        if kind != "word" or not level.query:
            continue
        clause = before[1].upper() in _NOT_STATEMENT_AFTER  # FOR UPDATE, DO UPDATE, ON DELETE
        if first_word and len(levels) == 1:
            first_word = False
            with_query = upper == "WITH"
            if upper in OPERATIONS:
                operation = value
                summary.append(value)
        elif upper in _DML and not clause:
            if with_query and operation is None and len(levels) == 1:
                operation = value
            summary.append(value)
        if upper in _TABLE_BEFORE and not clause:
            expect_table = True
            if upper == "FROM":
                level.in_from = True
            elif upper != "JOIN":
                level.in_from = False
        elif upper in _FROM_LIST_END:
            level.in_from = False
    text = " ".join(summary)[:_SUMMARY_LIMIT] if operation else None
    return operation, tables, text


def _table_name(tokens: list[tuple[str, str]], index: int) -> Optional[str]:
    """``schema.table`` starting at ``index``, quotes removed."""
    parts: list[str] = []
    while index < len(tokens):
        kind, value = tokens[index]
        if kind == "quoted":
            parts.append(value[1:-1].replace('""', '"'))
        elif kind == "word":
            parts.append(value)
        else:
            break
        if index + 2 < len(tokens) and tokens[index + 1] == ("punct", "."):
            index += 2
            continue
        break
    return ".".join(parts) or None
