"""Sentry op, description and transaction name of an OTel span.

Sentry groups spans by ``op`` and names them by ``description``; a segment root also needs a
transaction name and the ``transaction_info.source`` that says how stable that name is. OTel
carries the same facts in semantic-convention attributes, under old and stable names.
Everything this module knows is in the tables below (rendered into ``docs/mapping.md``):
:data:`SEMCONV` lists the attribute names per concept, :data:`INFERENCE_ORDER` decides which
family a span belongs to, the ``*_OPS`` tables give the op.

Example::

    >>> name_span("GET /users/{id}", SpanKind.SERVER,
    ...           {"http.request.method": "GET", "http.route": "/users/{id}"}).source
    'route'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Optional

from opentelemetry.trace import SpanKind

#: Concept -> attribute names, stable semconv first; the first non-empty one wins.
SEMCONV: Mapping[str, tuple[str, ...]] = {
    "http_method": ("http.request.method", "http.method"),
    "http_method_original": ("http.request.method_original",),
    "http_route": ("http.route",),
    "url_full": ("url.full", "http.url"),
    "url_path": ("url.path", "http.target"),
    "url_scheme": ("url.scheme", "http.scheme"),
    "server_address": ("server.address", "net.peer.name", "http.host"),
    "server_port": ("server.port", "net.peer.port"),
    "db_system": ("db.system.name", "db.system"),
    "db_statement": ("db.query.text", "db.statement"),
    "db_summary": ("db.query.summary",),
    "db_operation": ("db.operation.name", "db.operation"),
    "db_table": ("db.collection.name", "db.sql.table"),
    "messaging_system": ("messaging.system",),
    "messaging_operation": ("messaging.operation.type", "messaging.operation"),
    "messaging_destination": ("messaging.destination.name", "messaging.destination"),
    "rpc_system": ("rpc.system.name", "rpc.system"),
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "celery_action": ("celery.action",),
    "celery_task": ("celery.task_name",),
}

#: Family of a span: the first family with any trigger attribute present. ``db`` comes before
#: ``http`` because database clients that speak HTTP (Elasticsearch) carry both, and Sentry's
#: Queries view wants them as ``db``; ``celery`` comes before ``messaging`` so the task name wins.
INFERENCE_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("db", SEMCONV["db_system"]),
    ("http", SEMCONV["http_method"]),
    ("rpc", SEMCONV["rpc_system"] + SEMCONV["rpc_service"]),
    ("celery", SEMCONV["celery_action"] + SEMCONV["celery_task"]),
    ("messaging", SEMCONV["messaging_system"]),
)

#: Attributes that override inference (the names sentry-sdk's OTel integration uses).
OVERRIDES: Mapping[str, str] = {
    "op": "sentry.op",
    "description": "sentry.description",
    "transaction_name": "sentry.name",
    "source": "sentry.source",
}

_OVERRIDE_KEYS = frozenset(OVERRIDES.values())
_READ_KEYS = _OVERRIDE_KEYS.union(*SEMCONV.values())

HTTP_OPS: Mapping[SpanKind, str] = {SpanKind.SERVER: "http.server", SpanKind.CLIENT: "http.client"}
HTTP_DEFAULT_OP = "http"
#: ``db.redis`` is what sentry-sdk's Redis integration sends; Sentry keeps it out of Queries.
DB_OPS: Mapping[str, str] = {"redis": "db.redis"}
DB_DEFAULT_OP = "db"
#: RPC systems whose method is a gRPC path (``/package.Service/Method``).
GRPC_SYSTEMS = frozenset({"grpc", "connectrpc", "connect_rpc"})
GRPC_OPS: Mapping[SpanKind, str] = {SpanKind.SERVER: "grpc.server", SpanKind.CLIENT: "grpc.client"}
RPC_DEFAULT_OP = "rpc"
#: ``messaging.operation.type`` (and the old ``messaging.operation``) -> Sentry Queues op.
MESSAGING_OPS: Mapping[str, str] = {
    "create": "queue.publish",
    "send": "queue.publish",
    "publish": "queue.publish",
    "receive": "queue.receive",
    "process": "queue.process",
    "deliver": "queue.process",
    "settle": "queue.settle",
}
#: ``celery.action`` as opentelemetry-instrumentation-celery writes it.
CELERY_OPS: Mapping[str, str] = {"run": "queue.process", "apply_async": "queue.publish"}
#: Op when the messaging operation is unknown, and for spans of no known family.
QUEUE_OPS_BY_KIND: Mapping[SpanKind, str] = {
    SpanKind.PRODUCER: "queue.publish",
    SpanKind.CONSUMER: "queue.process",
}
QUEUE_DEFAULT_OP = "queue"
#: ``function`` is sentry-sdk's op for in-process work (``@sentry_sdk.trace``); ``default`` is
#: what Relay itself assigns when it cannot tell.
FALLBACK_OPS: Mapping[SpanKind, str] = {
    SpanKind.INTERNAL: "function",
    SpanKind.SERVER: "default",
    SpanKind.CLIENT: "default",
    **QUEUE_OPS_BY_KIND,
}

#: Ports left out of a rebuilt client URL, as a browser would.
DEFAULT_PORTS: Mapping[str, str] = {"http": "80", "https": "443"}
#: ``transaction_info.source`` values Relay accepts.
SOURCES = frozenset({"custom", "url", "route", "view", "component", "task"})
#: Relay trims a transaction name beyond 200 characters and an op beyond 128.
MAX_TRANSACTION_NAME = 200
MAX_OP = 128


class SpanNaming(NamedTuple):
    """How Sentry should show one span.

    ``op`` groups it ("http.server", "db"), ``description`` names it ("GET /users/{id}",
    the SQL), ``transaction_name`` names it when it is a segment root (at most 200
    characters) and ``source`` says how that name was made ("route", "url", "task",
    "component" or "custom"). A named tuple, not a frozen dataclass: one is made for every
    exported span, and a tuple is built ~5x faster (benchmarks/conversion_cost.py).
    """

    op: str
    description: str
    transaction_name: str
    source: str


def name_span(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    """Infer Sentry's op, description and transaction name from an OTel span.

    Reads old and stable semantic conventions alike; ``sentry.op``, ``sentry.description``,
    ``sentry.name`` and ``sentry.source`` attributes win over inference. Pure and cheap:
    called once per exported span. Example::

        name_span("SELECT", SpanKind.CLIENT, {"db.system": "postgresql",
                  "db.statement": "SELECT 1"})  # op "db", description "SELECT 1"
    """
    if type(attributes) is not dict:
        # A span's attributes are a proxy over BoundedAttributes, where every .get() miss
        # raises KeyError inside: copying just the keys we read makes the lookups dict hits
        # (measured: a two-attribute internal span goes from ~4.9 to ~1.9 us).
        attributes = {key: attributes[key] for key in attributes if key in _READ_KEYS}
    key = _memo_key(name, kind, attributes)
    if key is None:
        return _infer(name, kind, attributes)
    naming = _MEMO.get(key)
    if naming is None:
        naming = _infer(name, kind, attributes)
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()  # shapes are few in practice; a flood of unique ones stays bounded
        _MEMO[key] = naming
    return naming


#: Results of :func:`name_span` by :func:`_memo_key`. Spans repeat a few shapes (the same
#: query, route or internal step, request after request) and a lookup costs about a third of
#: an inference (benchmarks/conversion_cost.py). Pure results: one memo serves all threads.
_MEMO: dict[tuple[Any, ...], SpanNaming] = {}
_MEMO_SIZE = 4096
#: SpanKind members by identity: an Enum's hash is a Python call, an int's is not. Members
#: live for the whole process, so no other object can ever share one's id.
_KIND_INDEX: Mapping[int, int] = {id(member): member.value for member in SpanKind}


def _memo_key(
    name: str, kind: SpanKind, attributes: Mapping[str, Any]
) -> Optional[tuple[Any, ...]]:
    """``(name, kind, key, value, ...)`` of the attributes inference reads, or None.

    None (not memoised) unless ``kind`` is a SpanKind and the name and every value read are
    exactly ``str`` or ``int``: equal keys must mean equal inputs, and ``1 == 1.0 == True``
    or ``0.0 == -0.0`` would not (``_text`` writes each differently).
    """
    kind_index = _KIND_INDEX.get(id(kind))
    if kind_index is None or type(name) is not str:
        return None
    parts: list[Any] = [name, kind_index]
    for key, value in attributes.items():
        if key in _READ_KEYS:
            kind_of_value = type(value)
            if kind_of_value is not str and kind_of_value is not int:
                return None
            parts.append(key)
            parts.append(value)
    return tuple(parts)


def _infer(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    """What :func:`name_span` answers, worked out from the tables (it remembers the answer)."""
    family = _family(attributes)
    if family is not None:
        naming = _NAMERS[family](name, kind, attributes)
    else:
        op = FALLBACK_OPS.get(kind, "default")
        naming = SpanNaming(op, name or op, name or op, "custom")
    return _apply_overrides(naming, attributes)


def _family(attributes: Mapping[str, Any]) -> Optional[str]:
    """The first family of :data:`INFERENCE_ORDER` with a trigger attribute set, or None."""
    get = attributes.get
    for family, triggers in INFERENCE_ORDER:
        for key in triggers:
            if get(key):
                return family
    return None


# -- families -----------------------------------------------------------------------------
# One function per family, (name, kind, attributes) -> SpanNaming, registered in _NAMERS.


def _name_db(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    system = (_first(attributes, "db_system") or "").lower()
    op = DB_OPS.get(system, DB_DEFAULT_OP)
    description = _first(attributes, "db_statement") or _first(attributes, "db_summary")
    if not description:
        operation = _first(attributes, "db_operation")
        table = _first(attributes, "db_table")
        description = " ".join(part for part in (operation, table) if part) or name or op
    return SpanNaming(op, description, name or description, "custom")


def _name_http(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    method = _http_method(attributes)
    op = HTTP_OPS.get(kind, HTTP_DEFAULT_OP)
    if kind is SpanKind.CLIENT:
        url = _client_url(attributes)
        if url:
            description = f"{method} {url}"
            return SpanNaming(op, description, description, "url")
        return SpanNaming(op, name or method, name or method, "custom")
    route = _first(attributes, "http_route")
    if route:
        description = f"{method} {route}"
        return SpanNaming(op, description, description, "route")
    path = _server_path(attributes)
    if path:
        description = f"{method} {path}"
        # "/" is as stable as a route; any other raw path may carry ids.
        return SpanNaming(op, description, description, "route" if path == "/" else "url")
    return SpanNaming(op, name or method, name or method, "custom")


def _name_rpc(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    system = (_first(attributes, "rpc_system") or "").lower()
    grpc = system in GRPC_SYSTEMS
    op = GRPC_OPS.get(kind, RPC_DEFAULT_OP) if grpc else RPC_DEFAULT_OP
    service = _first(attributes, "rpc_service")
    method = _first(attributes, "rpc_method")
    if method and service and "/" not in method:
        method = f"{service}/{method}"
    if not method:
        return SpanNaming(op, name or op, name or op, "custom")
    if grpc and not method.startswith("/"):
        method = "/" + method  # the wire path, as sentry-sdk's gRPC integration names it
    return SpanNaming(op, method, method, "route")


def _name_celery(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    action = (_first(attributes, "celery_action") or "").lower()
    op = CELERY_OPS.get(action) or QUEUE_OPS_BY_KIND.get(kind, "queue.process")
    task = _first(attributes, "celery_task") or name or op
    return SpanNaming(op, task, task, "task")


def _name_messaging(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> SpanNaming:
    operation = (_first(attributes, "messaging_operation") or "").lower()
    op = MESSAGING_OPS.get(operation) or QUEUE_OPS_BY_KIND.get(kind, QUEUE_DEFAULT_OP)
    # Semconv span names are already "{operation} {destination}", low-cardinality.
    description = name or _first(attributes, "messaging_destination") or op
    source = "task" if op in ("queue.process", "queue.receive") else "custom"
    return SpanNaming(op, description, description, source)


_NAMERS: Mapping[str, Callable[[str, SpanKind, Mapping[str, Any]], SpanNaming]] = {
    "db": _name_db,
    "http": _name_http,
    "rpc": _name_rpc,
    "celery": _name_celery,
    "messaging": _name_messaging,
}


# -- helpers ------------------------------------------------------------------------------


def _apply_overrides(naming: SpanNaming, attributes: Mapping[str, Any]) -> SpanNaming:
    # Common case first: no override, nothing to cut -> no second SpanNaming to build.
    if (
        _OVERRIDE_KEYS.isdisjoint(attributes)
        and len(naming.transaction_name) <= MAX_TRANSACTION_NAME
        and len(naming.op) <= MAX_OP
    ):
        return naming
    op = _text(attributes.get(OVERRIDES["op"])) or naming.op
    description = _text(attributes.get(OVERRIDES["description"])) or naming.description
    transaction = _text(attributes.get(OVERRIDES["transaction_name"]))
    source = naming.source
    if transaction:
        source = "custom"
    else:
        transaction = naming.transaction_name
    explicit_source = _text(attributes.get(OVERRIDES["source"]))
    if explicit_source in SOURCES:
        source = explicit_source
    if len(transaction) > MAX_TRANSACTION_NAME:
        transaction = transaction[: MAX_TRANSACTION_NAME - 3] + "..."
    return SpanNaming(op[:MAX_OP], description, transaction, source)


def _first(attributes: Mapping[str, Any], concept: str) -> Optional[str]:
    for key in SEMCONV[concept]:
        text = _text(attributes.get(key))
        if text:
            return text
    return None


def _text(value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _http_method(attributes: Mapping[str, Any]) -> str:
    method = _first(attributes, "http_method") or "HTTP"
    if method == "_OTHER":  # stable semconv: a non-standard method, original kept aside
        method = _first(attributes, "http_method_original") or "HTTP"
    return method.upper()


def _strip_query(target: str) -> str:
    return target.split("#", 1)[0].split("?", 1)[0]


def _server_path(attributes: Mapping[str, Any]) -> Optional[str]:
    path = _first(attributes, "url_path")
    if path:
        return _strip_query(path) or None
    url = _first(attributes, "url_full")
    if url:
        return _url_parts(url)[2] or None
    return None


def _client_url(attributes: Mapping[str, Any]) -> Optional[str]:
    url = _first(attributes, "url_full")
    if url:
        scheme, host, path = _url_parts(url)
        return f"{scheme}://{host}{path}" if scheme else host + path
    host = _first(attributes, "server_address")
    path = _strip_query(_first(attributes, "url_path") or "")
    if not host:
        return path or None
    host = host.rpartition("@")[2]
    scheme = _first(attributes, "url_scheme")
    port = _first(attributes, "server_port")
    if port and ":" not in host and port != DEFAULT_PORTS.get(scheme or ""):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{path}" if scheme else host + path


def _url_parts(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path) with userinfo, query and fragment removed; never raises.

    String partitioning instead of ``urllib.parse``: cheaper, and it cannot raise on the
    malformed URLs instrumentation sometimes records.
    """
    base = _strip_query(url)
    scheme, sep, rest = base.partition("://")
    if not sep:
        return "", "", base
    authority, slash, path = rest.partition("/")
    return scheme, authority.rpartition("@")[2], slash + path
