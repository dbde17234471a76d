"""Database semantic conventions: stable names always, the old names too on request.

The names are data: :data:`OLD_NAMES` pairs each stable attribute with the name it had before
the database conventions went stable. ``OTEL_SEMCONV_STABILITY_OPT_IN`` is read once, by the
same switch contrib instrumentors use, so both agree in one process:

=====================================  =========================================
``OTEL_SEMCONV_STABILITY_OPT_IN``      attributes written
=====================================  =========================================
unset, ``database``                    stable names only (contrib: old names when unset)
``database/dup``                       stable names and the old names
=====================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability,
    _OpenTelemetryStabilitySignalType,
    _StabilityMode,
)

DB_SYSTEM_NAME = "db.system.name"
DB_NAMESPACE = "db.namespace"
DB_OPERATION_NAME = "db.operation.name"
DB_COLLECTION_NAME = "db.collection.name"
DB_QUERY_TEXT = "db.query.text"
DB_QUERY_SUMMARY = "db.query.summary"
DB_OPERATION_BATCH_SIZE = "db.operation.batch.size"
DB_RESPONSE_STATUS_CODE = "db.response.status_code"
#: Rows a statement returned, as seen when it finished (development status in semconv).
DB_RESPONSE_RETURNED_ROWS = "db.response.returned_rows"
#: Rows an INSERT/UPDATE/DELETE changed. Semconv has no name for it yet (semantic-conventions
#: issue 3094 proposes one), so it lives in the library's own namespace until it does.
AFFECTED_ROWS = "sqlalchemy.affected_rows"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

#: Stable attribute -> its pre-stable name, written too under ``database/dup``.
OLD_NAMES: Mapping[str, str] = MappingProxyType(
    {
        DB_SYSTEM_NAME: "db.system",
        DB_NAMESPACE: "db.name",
        DB_OPERATION_NAME: "db.operation",
        DB_COLLECTION_NAME: "db.sql.table",
        DB_QUERY_TEXT: "db.statement",
        SERVER_ADDRESS: "net.peer.name",
        SERVER_PORT: "net.peer.port",
    }
)

#: SQLAlchemy dialect name -> ``db.system.name`` where they differ.
SYSTEM_NAMES: Mapping[str, str] = MappingProxyType(
    {"mssql": "microsoft.sql_server", "oracle": "oracle.db"}
)
#: ``db.system.name`` -> the old ``db.system`` value where they differ.
OLD_SYSTEM_NAMES: Mapping[str, str] = MappingProxyType(
    {"microsoft.sql_server": "mssql", "oracle.db": "oracle"}
)

#: The conventions version our spans follow (stable database conventions).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.33.0"


def old_names_too() -> bool:
    """True when ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for ``database/dup``."""
    _OpenTelemetrySemanticConventionStability._initialize()
    mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
        _OpenTelemetryStabilitySignalType.DATABASE
    )
    return mode is _StabilityMode.DATABASE_DUP


def system_name(dialect_name: str) -> str:
    """``db.system.name`` of a SQLAlchemy dialect (``"mssql"`` -> ``"microsoft.sql_server"``)."""
    return SYSTEM_NAMES.get(dialect_name, dialect_name)


def with_old_names(attributes: Mapping[str, Any], old_too: bool) -> dict[str, Any]:
    """``attributes`` (stable names), plus their old names when ``old_too``."""
    out = dict(attributes)
    if not old_too:
        return out
    for stable, old in OLD_NAMES.items():
        if stable in attributes:
            value = attributes[stable]
            out[old] = OLD_SYSTEM_NAMES.get(value, value) if stable == DB_SYSTEM_NAME else value
    return out
