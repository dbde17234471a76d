"""Which database errors are the system running out of something: the ``system_resource`` call.

The core classifier judges errors by type name and message; a driver's ``OperationalError``
reads as an integration problem there. Only the database knows better: SQLSTATE class 08 (the
connection failed), 53 (insufficient resources: too many connections, disk full, out of
memory), 57 (statement timeout, server shutting down), 58 (system error) and 55P03 (lock not
available) are the system running out of something, and so is a pool that has no connection to
give. Those are categorised ``system_resource`` here; every other error is left to the core
classifier (and to the user's classification rules), so ``IntegrityError`` stays
``data_quality`` and an override for it keeps working.
"""

from __future__ import annotations

from typing import Optional

from otel_sentry_biz.impact import Category

#: SQLSTATE classes (first two characters) whose errors are a resource problem.
RESOURCE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
#: Single SQLSTATE codes outside those classes that are too.
RESOURCE_SQLSTATES = frozenset({"55P03"})  # lock_not_available (lock_timeout)
#: SQLSTATE class 28: invalid authorization (wrong password, unknown role): a security problem.
SECURITY_SQLSTATE_CLASSES = frozenset({"28"})

#: Message fragments, lower case, of drivers that give no SQLSTATE (SQLite, client-side errors
#: of psycopg and MySQL drivers before a server answered).
RESOURCE_MESSAGES = (
    "could not connect",
    "connection refused",
    "connection timed out",
    "timeout expired",
    "server closed the connection",
    "connection reset",
    "lost connection",
    "can't connect",
    "too many connections",
    "remaining connection slots",
    "database is locked",
    "database table is locked",
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
    "out of memory",
)
SECURITY_MESSAGES = ("password authentication failed", "access denied for user")


def sqlstate_of(error: BaseException) -> Optional[str]:
    """The SQLSTATE a driver attached to ``error`` (psycopg2 ``pgcode``, psycopg and asyncpg
    ``sqlstate``), or None."""
    for name in ("sqlstate", "pgcode"):
        code = getattr(error, name, None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def category_of(
    error: BaseException, *, connecting: bool = False, disconnect: bool = False
) -> Optional[Category]:
    """The category of a driver error when the database tells more than its type, else None.

    ``connecting``: the error came while opening a connection; ``disconnect``: SQLAlchemy found
    the connection unusable (``ExceptionContext.is_disconnect``).
    """
    code = sqlstate_of(error)
    message = str(error).lower()
    if code is not None:
        if code[:2] in SECURITY_SQLSTATE_CLASSES:
            return Category.SECURITY
        if code[:2] in RESOURCE_SQLSTATE_CLASSES or code in RESOURCE_SQLSTATES:
            return Category.SYSTEM_RESOURCE
    if any(fragment in message for fragment in SECURITY_MESSAGES):
        return Category.SECURITY
    if disconnect or connecting or any(fragment in message for fragment in RESOURCE_MESSAGES):
        return Category.SYSTEM_RESOURCE
    return None
