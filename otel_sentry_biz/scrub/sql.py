"""Replace the literals of a SQL statement with placeholders.

``SELECT * FROM users WHERE email = 'bob@example.com' AND pin = 1234`` becomes
``SELECT * FROM users WHERE email = %s AND pin = %s``: the statement keeps its shape (and
groups with its siblings in Sentry, which uses the same ``%s``), the values are gone. String
literals (``'...'`` with ``''`` escapes, ``N'...'``, ``E'...'``, ``X'...'``, an unterminated
one running to the end) and numbers (including hex ``0x..``) are replaced; identifiers such as
``t1``, ``"col 2"`` or a backquoted name, bind parameters (``$1``, ``:name``, ``?``, ``%s``) and
keywords stay. MySQL's double-quoted strings read as identifiers here; the value detectors still
search them.
"""

from __future__ import annotations

import re

PLACEHOLDER = "%s"

# No lookbehind in the pattern (it would defeat the regex engine's fast scan): whether a
# match is a literal or part of an identifier (``t1``, ``$1``, ``:p1``) is decided in
# ``_replace`` from the character before it (benchmarks/scrub_corpus.py --timing).
_LITERAL = re.compile(
    r"\"[^\"]*\"|`[^`]*`"  # quoted identifiers: kept
    r"|[NnEeBbXx]?'(?:[^']+|'')*(?:'|\Z)"
    r"|-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
)
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.:@")
_DIGIT = re.compile(r"\d")

#: Span data keys that hold a statement (old and stable semantic conventions).
SQL_KEYS = frozenset({"db.statement", "db.query.text"})


def scrub_sql(statement: str) -> str:
    """``statement`` with every string and number literal replaced by ``%s``."""
    if "'" not in statement and _DIGIT.search(statement) is None:
        return statement
    return _LITERAL.sub(_replace, statement)


def _replace(match: re.Match[str]) -> str:
    text = match.group()
    if text[0] in '"`':
        return text
    start, end = match.span()
    statement = match.string
    before = statement[start - 1] if start else " "
    if text[0] == "'":
        return PLACEHOLDER
    if text[1:2] == "'":  # N'x', or name='x' where the letter ends the name
        return text[0] + PLACEHOLDER if before in _IDENTIFIER_CHARS else PLACEHOLDER
    after = statement[end] if end < len(statement) else " "
    if before in _IDENTIFIER_CHARS or after in _IDENTIFIER_CHARS:
        return text  # a digit inside a name (t1, $1, :p1, col2x), not a number
    return PLACEHOLDER


def is_sql_op(op: object) -> bool:
    """Sentry ops whose description is a SQL statement (``db``, ``db.sql.query``...)."""
    return isinstance(op, str) and (op == "db" or op.startswith("db.")) and "redis" not in op
