"""Sentry span status of an OTel span: the HTTP, gRPC and OTel status tables.

Sentry's span status is gRPC's vocabulary (``ok``, ``not_found``, ``internal_error`` ...).
The most specific fact decides: the HTTP response status code, then the gRPC status code,
then the OTel span status. The tables are data (rendered into ``docs/mapping.md``) and every
value is a name Relay accepts (``sentry_relay.SPAN_STATUS_NAME_TO_CODE``).

Example::

    >>> sentry_status(StatusCode.UNSET, {"http.response.status_code": 404})
    'not_found'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry.trace import StatusCode

#: Response status code attributes, stable semconv first.
HTTP_STATUS_ATTRIBUTES: tuple[str, ...] = ("http.response.status_code", "http.status_code")

#: HTTP codes with a status of their own. sentry-sdk's table (``get_span_status_from_http_code``)
#: plus the codes whose meaning is a gRPC status word for word (408, 412, 416, 499, 502, 507).
HTTP_STATUS: Mapping[int, str] = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    409: "already_exists",
    412: "failed_precondition",
    413: "failed_precondition",
    416: "out_of_range",
    429: "resource_exhausted",
    499: "cancelled",
    500: "internal_error",
    501: "unimplemented",
    502: "unavailable",
    503: "unavailable",
    504: "deadline_exceeded",
    507: "resource_exhausted",
}

#: Where HTTP_STATUS deliberately differs from sentry-sdk (documented; checked by the tests).
REFINED_OVER_SENTRY_SDK = frozenset({408, 412, 416, 499, 502, 507})

#: Every other code by class (``code // 100``). Codes outside 100..599 are not HTTP status
#: codes (0 often means "no response"): they are ignored and the next source decides.
HTTP_STATUS_BY_CLASS: Mapping[int, str] = {
    1: "ok",
    2: "ok",
    3: "ok",
    4: "invalid_argument",
    5: "internal_error",
}

#: gRPC status code attributes. ``rpc.response.status_code`` is the newer, system-neutral
#: name; it is read only for the systems in :data:`GRPC_CODE_SYSTEMS`, where it holds a gRPC
#: code (JSON-RPC error codes, for one, mean something else).
GRPC_STATUS_ATTRIBUTE = "rpc.grpc.status_code"
RPC_STATUS_ATTRIBUTE = "rpc.response.status_code"
RPC_SYSTEM_ATTRIBUTES: tuple[str, ...] = ("rpc.system.name", "rpc.system")
GRPC_CODE_SYSTEMS = frozenset({"grpc", "connectrpc", "connect_rpc"})

#: gRPC status code -> Sentry status (Sentry's status names are gRPC's, lower-cased).
GRPC_STATUS: Mapping[int, str] = {
    0: "ok",
    1: "cancelled",
    2: "unknown",
    3: "invalid_argument",
    4: "deadline_exceeded",
    5: "not_found",
    6: "already_exists",
    7: "permission_denied",
    8: "resource_exhausted",
    9: "failed_precondition",
    10: "aborted",
    11: "out_of_range",
    12: "unimplemented",
    13: "internal_error",
    14: "unavailable",
    15: "data_loss",
    16: "unauthenticated",
}

#: gRPC code names as newer semconv and Connect record them ("NOT_FOUND", "not_found").
GRPC_CODE_BY_NAME: Mapping[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

#: The OTel span status, the last resort.
OTEL_STATUS: Mapping[StatusCode, str] = {
    StatusCode.UNSET: "ok",
    StatusCode.OK: "ok",
    StatusCode.ERROR: "internal_error",
}


_READ_KEYS = frozenset(
    (*HTTP_STATUS_ATTRIBUTES, GRPC_STATUS_ATTRIBUTE, RPC_STATUS_ATTRIBUTE, *RPC_SYSTEM_ATTRIBUTES)
)


def sentry_status(status_code: StatusCode, attributes: Mapping[str, Any]) -> str:
    """The Sentry span status for an OTel span's status and attributes.

    HTTP status code first, then gRPC status code, then the OTel status. A code that says
    ``ok`` does not hide an OTel ``ERROR`` (a 200 response whose body failed to read is not
    ok): that span gets ``internal_error``. Example::

        sentry_status(StatusCode.ERROR, {"rpc.grpc.status_code": 4})  # "deadline_exceeded"
    """
    if type(attributes) is not dict:
        # As in ops.name_span: span attributes make every .get() miss raise inside.
        attributes = {key: attributes[key] for key in attributes if key in _READ_KEYS}
    status = http_status(attributes)
    if status is None:
        status = grpc_status(attributes)
    if status is None or (status == "ok" and status_code is StatusCode.ERROR):
        return OTEL_STATUS.get(status_code, "unknown")
    return status


def http_status(attributes: Mapping[str, Any]) -> Optional[str]:
    """Sentry status from the HTTP response status code, or None if there is no valid one."""
    for key in HTTP_STATUS_ATTRIBUTES:
        value = attributes.get(key)
        if value is None:  # the common case, answered before _as_int's type tests
            continue
        code = _as_int(value)
        if code is not None and 100 <= code <= 599:
            return HTTP_STATUS.get(code) or HTTP_STATUS_BY_CLASS[code // 100]
    return None


def grpc_status(attributes: Mapping[str, Any]) -> Optional[str]:
    """Sentry status from the gRPC status code (number or name), or None."""
    value = attributes.get(GRPC_STATUS_ATTRIBUTE)
    code = None if value is None else _grpc_code(value)
    if code is None and RPC_STATUS_ATTRIBUTE in attributes:
        system = next((attributes[k] for k in RPC_SYSTEM_ATTRIBUTES if k in attributes), None)
        if isinstance(system, str) and system.lower() in GRPC_CODE_SYSTEMS:
            code = _grpc_code(attributes[RPC_STATUS_ATTRIBUTE])
    return None if code is None else GRPC_STATUS.get(code)


def _grpc_code(value: Any) -> Optional[int]:
    if isinstance(value, str):
        name = value.strip().upper()
        if name in GRPC_CODE_BY_NAME:
            return GRPC_CODE_BY_NAME[name]
    return _as_int(value)


def _as_int(value: Any) -> Optional[int]:
    """An int, an integral float or a numeric string as int; anything else (bool!) as None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        # isdecimal, not isdigit: int() rejects "²"; the length cap keeps int() cheap.
        if 0 < len(text) <= 12 and text.isdecimal():
            return int(text)
    return None
