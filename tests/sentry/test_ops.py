"""Sentry op / description / transaction name inferred from old and stable semconv."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from sentry_relay import StoreNormalizer

from otel_sentry_biz.sentry.ops import (
    FALLBACK_OPS,
    INFERENCE_ORDER,
    MESSAGING_OPS,
    SEMCONV,
    SOURCES,
    SpanNaming,
    name_span,
)
from tests.relay_oracle import meta_errors

SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL
PRODUCER, CONSUMER = SpanKind.PRODUCER, SpanKind.CONSUMER

# Old and stable conventions side by side: the same span must get the same naming.
OLD_AND_STABLE = {
    "http server with route": (
        SERVER,
        {"http.method": "GET", "http.route": "/users/{id}", "http.target": "/users/7?x=1"},
        {"http.request.method": "GET", "http.route": "/users/{id}", "url.path": "/users/7"},
        SpanNaming("http.server", "GET /users/{id}", "GET /users/{id}", "route"),
    ),
    "http server without route": (
        SERVER,
        {"http.method": "POST", "http.target": "/orders/42?token=secret"},
        {"http.request.method": "POST", "url.path": "/orders/42", "url.query": "token=secret"},
        SpanNaming("http.server", "POST /orders/42", "POST /orders/42", "url"),
    ),
    "http client": (
        CLIENT,
        {"http.method": "GET", "http.url": "http://127.0.0.1:8000/x?q=1"},
        {"http.request.method": "GET", "url.full": "http://127.0.0.1:8000/x?q=1"},
        SpanNaming(
            "http.client", "GET http://127.0.0.1:8000/x", "GET http://127.0.0.1:8000/x", "url"
        ),
    ),
    "database": (
        CLIENT,
        {"db.system": "postgresql", "db.statement": "SELECT * FROM t WHERE id = %s"},
        {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM t WHERE id = %s"},
        SpanNaming("db", "SELECT * FROM t WHERE id = %s", "SELECT", "custom"),
    ),
    "database without statement": (
        CLIENT,
        {"db.system": "mongodb", "db.operation": "find", "db.sql.table": "users"},
        {"db.system.name": "mongodb", "db.operation.name": "find", "db.collection.name": "users"},
        SpanNaming("db", "find users", "SELECT", "custom"),
    ),
    "messaging consumer": (
        CONSUMER,
        {"messaging.system": "kafka", "messaging.operation": "process"},
        {"messaging.system": "kafka", "messaging.operation.type": "process"},
        SpanNaming("queue.process", "SELECT", "SELECT", "task"),
    ),
    "grpc server": (
        SERVER,
        {"rpc.system": "grpc", "rpc.service": "helloworld.Greeter", "rpc.method": "SayHello"},
        {"rpc.system.name": "grpc", "rpc.method": "helloworld.Greeter/SayHello"},
        SpanNaming(
            "grpc.server",
            "/helloworld.Greeter/SayHello",
            "/helloworld.Greeter/SayHello",
            "route",
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(OLD_AND_STABLE))
def test_old_and_stable_semconv_name_a_span_the_same(case):
    kind, old, stable, expected = OLD_AND_STABLE[case]
    assert name_span("SELECT", kind, old) == expected
    assert name_span("SELECT", kind, stable) == expected


def test_http_server_names_never_contain_the_query_string():
    for attributes in (
        {"http.method": "GET", "http.target": "/search?q=secret#frag"},
        {"http.request.method": "GET", "url.full": "https://shop.example/search?q=secret"},
        {"http.request.method": "GET", "url.path": "/search", "url.query": "q=secret"},
    ):
        naming = name_span("GET", SERVER, attributes)
        assert naming.transaction_name == "GET /search"
        assert "secret" not in naming.description


def test_http_server_root_path_counts_as_a_route():
    naming = name_span("GET", SERVER, {"http.request.method": "GET", "url.path": "/"})
    assert naming.source == "route"


def test_http_client_description_drops_userinfo_query_and_fragment():
    naming = name_span(
        "GET",
        CLIENT,
        {"http.request.method": "GET", "url.full": "https://bob:pw@api.example:8443/v1/x?k=s#f"},
    )
    assert naming.description == "GET https://api.example:8443/v1/x"


def test_http_client_url_is_rebuilt_from_parts_without_default_port():
    attributes = {
        "http.request.method": "GET",
        "url.scheme": "https",
        "server.address": "api.example",
        "server.port": 443,
        "url.path": "/v1/items",
    }
    assert name_span("GET", CLIENT, attributes).description == "GET https://api.example/v1/items"
    attributes["server.port"] = 8443
    assert (
        name_span("GET", CLIENT, attributes).description == "GET https://api.example:8443/v1/items"
    )


def test_old_http_client_uses_peer_name_and_target():
    attributes = {"http.method": "get", "net.peer.name": "10.0.0.5", "http.target": "/p?a=1"}
    assert name_span("HTTP GET", CLIENT, attributes).description == "GET 10.0.0.5/p"


def test_non_standard_http_method_uses_the_original_method():
    attributes = {
        "http.request.method": "_OTHER",
        "http.request.method_original": "purge",
        "http.route": "/cache",
    }
    assert name_span("HTTP", SERVER, attributes).description == "PURGE /cache"


def test_malformed_urls_never_raise():
    for url in ("http://[::1", "://", "?", "#", "http://@/", "not a url", "http://h:port/x"):
        naming = name_span("GET", CLIENT, {"http.request.method": "GET", "url.full": url})
        assert naming.op == "http.client"


def test_http_span_of_internal_kind_gets_plain_http_op():
    naming = name_span("x", INTERNAL, {"http.request.method": "GET", "http.route": "/a"})
    assert naming.op == "http"


def test_database_client_speaking_http_is_a_db_span():
    attributes = {
        "db.system.name": "elasticsearch",
        "http.request.method": "GET",
        "url.full": "http://es:9200/idx/_search",
        "db.query.text": '{"query": {}}',
    }
    assert name_span("search", CLIENT, attributes).op == "db"


def test_redis_gets_sentry_sdks_redis_op():
    naming = name_span("GET", CLIENT, {"db.system": "redis", "db.statement": "GET user:?"})
    assert (naming.op, naming.description) == ("db.redis", "GET user:?")


def test_db_query_summary_is_used_when_there_is_no_query_text():
    attributes = {"db.system.name": "postgresql", "db.query.summary": "SELECT users"}
    assert name_span("q", CLIENT, attributes).description == "SELECT users"


@pytest.mark.parametrize("operation", sorted(MESSAGING_OPS))
def test_messaging_operation_picks_the_queue_op(operation):
    attributes = {"messaging.system": "rabbitmq", "messaging.operation.type": operation}
    assert name_span(f"{operation} q", INTERNAL, attributes).op == MESSAGING_OPS[operation]


def test_messaging_without_operation_falls_back_to_span_kind():
    attributes = {"messaging.system": "sqs", "messaging.destination.name": "orders"}
    assert name_span("orders send", PRODUCER, attributes).op == "queue.publish"
    assert name_span("orders process", CONSUMER, attributes).op == "queue.process"


def test_celery_worker_span_is_a_task_transaction():
    attributes = {"celery.action": "run", "celery.task_name": "billing.tasks.invoice"}
    naming = name_span("run/billing.tasks.invoice", CONSUMER, attributes)
    assert naming == SpanNaming(
        "queue.process", "billing.tasks.invoice", "billing.tasks.invoice", "task"
    )


def test_celery_publish_span_is_queue_publish():
    attributes = {"celery.action": "apply_async", "celery.task_name": "billing.tasks.invoice"}
    assert name_span("apply_async/x", PRODUCER, attributes).op == "queue.publish"


def test_grpc_client_and_other_rpc_systems():
    grpc = {"rpc.system": "grpc", "rpc.service": "pkg.Svc", "rpc.method": "Do"}
    assert name_span("/pkg.Svc/Do", CLIENT, grpc).op == "grpc.client"
    rmi = {"rpc.system": "java_rmi", "rpc.service": "Calc", "rpc.method": "add"}
    assert name_span("Calc/add", CLIENT, rmi) == SpanNaming("rpc", "Calc/add", "Calc/add", "route")


@pytest.mark.parametrize("kind", list(SpanKind))
def test_span_of_no_known_family_gets_the_fallback_op_and_its_name(kind):
    naming = name_span("compute invoice", kind, {"biz.customer": "ACME"})
    assert naming == SpanNaming(FALLBACK_OPS[kind], "compute invoice", "compute invoice", "custom")


def test_explicit_sentry_attributes_win():
    attributes = {
        "http.request.method": "GET",
        "http.route": "/a",
        "sentry.op": "billing.invoice",
        "sentry.description": "invoice run",
        "sentry.name": "Invoice run",
    }
    assert name_span("GET /a", SERVER, attributes) == SpanNaming(
        "billing.invoice", "invoice run", "Invoice run", "custom"
    )


def test_explicit_source_is_honoured_only_when_relay_knows_it():
    base = {"sentry.name": "checkout"}
    assert name_span("x", INTERNAL, {**base, "sentry.source": "view"}).source == "view"
    assert name_span("x", INTERNAL, {**base, "sentry.source": "bogus"}).source == "custom"


def test_empty_name_never_gives_an_empty_description():
    naming = name_span("", INTERNAL, {})
    assert naming.description and naming.transaction_name


def test_non_string_attribute_values_do_not_break_inference():
    attributes = {"http.request.method": ("GET",), "db.system": 3, "http.route": None}
    assert isinstance(name_span("x", SERVER, attributes), SpanNaming)


@pytest.mark.parametrize(
    "attributes",
    [
        {"http.request.method": "GET", "http.route": "/a/{id}", "biz.customer": "ACME"},
        {"db.system": "mysql", "db.statement": "SELECT 1", "sentry.op": "db.sql.query"},
        {"biz.customer": "ACME", "sentry.name": "checkout"},
    ],
)
def test_a_finished_sdk_span_is_named_like_its_attributes_as_a_dict(attributes):
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("op", kind=SERVER, attributes=attributes) as span:
        pass
    assert not isinstance(span.attributes, dict)  # the SDK's read-only proxy
    assert name_span(span.name, span.kind, span.attributes) == name_span("op", SERVER, attributes)


def test_every_trigger_and_alias_is_a_semconv_attribute_name():
    triggers = {key for _, keys in INFERENCE_ORDER for key in keys}
    aliases = {key for keys in SEMCONV.values() for key in keys}
    assert triggers <= aliases
    assert all(key == key.strip() and "." in key for key in aliases)


def _transaction(naming: SpanNaming) -> dict:
    now = time.time()
    return {
        "event_id": "a" * 32,
        "type": "transaction",
        "transaction": naming.transaction_name,
        "transaction_info": {"source": naming.source},
        "start_timestamp": now - 1,
        "timestamp": now,
        "contexts": {
            "trace": {"trace_id": "b" * 32, "span_id": "c" * 16, "op": naming.op, "status": "ok"}
        },
        "spans": [],
    }


@pytest.mark.parametrize(
    "attributes",
    [
        {"http.request.method": "GET", "http.route": "/" + "r" * 400},
        {"sentry.op": "o" * 300, "sentry.name": "n" * 300},
        {"celery.task_name": "t" * 250},
    ],
)
def test_long_names_and_ops_are_shortened_before_relay_trims_them(attributes):
    naming = name_span("x" * 300, SERVER, attributes)
    normalized = StoreNormalizer(enable_trimming=True).normalize_event(_transaction(naming))
    assert not meta_errors(normalized)
    assert normalized["transaction"] == naming.transaction_name
    assert naming.source in SOURCES
