"""The pure parts of HTTP instrumentation, tested exhaustively without sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_sentry_biz import ConfigError
from otel_sentry_biz_instrumentors.http import semconv
from otel_sentry_biz_instrumentors.http.asgi import route_of
from otel_sentry_biz_instrumentors.http.clients.call import is_transport_error
from otel_sentry_biz_instrumentors.http.redact import (
    URL_SECRET_NAMES,
    captured_headers,
    header_map,
    is_sensitive_name,
    redact_query,
    redact_url,
)
from otel_sentry_biz_instrumentors.http.server import split_host, user_attributes
from otel_sentry_biz_instrumentors.http.settings import VARIABLES, HttpSettings


@pytest.mark.parametrize(
    ("query", "keep", "expected"),
    [
        ("", None, ""),
        ("page=2", None, "page=2"),
        ("page=2&access_token=abc", None, "page=2&access_token=REDACTED"),
        ("Password=x&API-Key=y&sig=z&X-Amz-Signature=s", None,
         "Password=REDACTED&API-Key=REDACTED&sig=REDACTED&X-Amz-Signature=REDACTED"),
        ("email=a%40b.c&code=123", None, "email=REDACTED&code=REDACTED"),
        ("page=2&sort=asc", frozenset({"page"}), "page=2&sort=REDACTED"),
        ("page=2&token=t", frozenset({"page", "token"}), "page=2&token=REDACTED"),
        ("flag&token=&a=1", None, "flag&token=&a=1"),  # nothing to hide
        ("country_code=fr&zip=1", None, "country_code=fr&zip=1"),
    ],
)  # fmt: skip
def test_redact_query(query, keep, expected):
    assert redact_query(query, keep) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://me:pw@api.example.com/v1?key=k#frag",
         "https://REDACTED:REDACTED@api.example.com/v1?key=REDACTED"),
        ("http://[::1]:8080/x?token=t", "http://[::1]:8080/x?token=REDACTED"),
        ("http://[bad/x", "http://[bad/x"),  # unparseable: left as it was
    ],
)  # fmt: skip
def test_redact_url(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("cookie", True),
        ("Set-Cookie", True),
        ("X-Api-Key", True),
        ("x-csrf-token", True),
        ("X-Request-Id", False),
        ("User-Agent", False),
        ("page", False),
    ],
)
def test_sensitive_names(name, sensitive):
    assert is_sensitive_name(name) is sensitive


def test_headers_are_captured_only_when_allowed_and_secrets_redacted():
    headers = header_map([("X-Request-Id", "a"), ("x-request-id", "b"), ("Cookie", "c=1")])

    captured = captured_headers(headers, frozenset({"x-request-id", "cookie", "absent"}), "p.")

    assert captured == {"p.x-request-id": ("a", "b"), "p.cookie": ("REDACTED",)}


def test_stable_names_by_default_and_old_ones_too_under_dup():
    stable: dict = {}
    dup: dict = {}
    for attrs, mode in ((stable, semconv.STABLE), (dup, semconv.DUP)):
        semconv.set_http(attrs, "url_full", "http://x/", mode)
        semconv.set_http(attrs, "route", "/x", mode)
        semconv.set_http(attrs, "target", "/x?q", mode)
        semconv.set_http(attrs, "url_query", "", mode)  # empty: not written

    assert stable == {"url.full": "http://x/", "http.route": "/x"}
    assert dup == {"url.full": "http://x/", "http.url": "http://x/", "http.route": "/x",
                   "http.target": "/x?q"}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "name", "attrs"),
    [
        ("GET", "GET", {"http.request.method": "GET"}),
        ("get", "GET", {"http.request.method": "GET", "http.request.method_original": "get"}),
        ("PURGE", "HTTP", {"http.request.method": "_OTHER",
                           "http.request.method_original": "PURGE"}),
    ],
)  # fmt: skip
def test_methods_follow_semconv(method, name, attrs):
    found: dict = {}
    assert semconv.set_method(found, method, semconv.STABLE) == name
    assert found == attrs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("api.example.com", ("api.example.com", None)),
        ("api.example.com:8443", ("api.example.com", 8443)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("host:notaport", ("host", None)),
    ],
)
def test_split_host(value, expected):
    assert split_host(value) == expected


def test_user_id_only_unless_pii_allowed():
    user = {"id": 42, "email": "ann@example.com", "username": "ann", "name": "Ann", "x": 1}

    assert user_attributes(user, HttpSettings()) == {"user.id": "42"}
    assert user_attributes(user, HttpSettings(send_default_pii=True, semconv=semconv.DUP)) == {
        "user.id": "42",
        "enduser.id": "42",
        "user.email": "ann@example.com",
        "user.name": "ann",
        "user.full_name": "Ann",
    }


def test_settings_from_arguments_then_variables():
    env = {
        "OTEL_SENTRY_BIZ_CAPTURE_HEADERS": " X-Request-Id ,Authorization,",
        "OTEL_SENTRY_BIZ_CAPTURE_QUERY": "*",
        "SENTRY_SEND_DEFAULT_PII": "yes",
    }

    from_env = HttpSettings.load(env)
    from_args = HttpSettings.load(env, capture_headers=["X-Trace"], capture_query="page",
                                  send_default_pii=False)  # fmt: skip

    assert from_env.capture_headers == {"x-request-id", "authorization"}
    assert from_env.capture_query is None
    assert from_env.send_default_pii is True
    assert from_args.capture_headers == {"x-trace"}
    assert from_args.capture_query == {"page"}
    assert from_args.send_default_pii is False
    assert HttpSettings.load({}) == HttpSettings()


def test_each_declared_variable_is_read_and_on_the_configuration_page():
    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for variable in VARIABLES:
        from_env = HttpSettings.load({variable.name: "X-One"})
        from_argument = HttpSettings.load({}, **{variable.field: "X-Two"})
        assert getattr(from_env, variable.field) == {"x-one"}
        assert getattr(from_argument, variable.field) == {"x-two"}
        assert f"| `{variable.name}`<br>argument `{variable.field}` |" in page


def test_bad_pii_variable_names_the_variable_and_the_fix():
    with pytest.raises(ConfigError, match=r"SENTRY_SEND_DEFAULT_PII='maybe'.*true or false"):
        HttpSettings.load({"SENTRY_SEND_DEFAULT_PII": "maybe"})


def test_transport_errors_are_told_from_programming_errors():
    import httpcore
    import requests
    import urllib3

    assert is_transport_error(ConnectionRefusedError())
    assert is_transport_error(TimeoutError())
    assert is_transport_error(requests.ConnectionError())
    assert is_transport_error(urllib3.exceptions.NewConnectionError(None, "refused"))
    assert is_transport_error(httpcore.ConnectError("refused"))
    assert not is_transport_error(TypeError("bad argument"))
    assert not is_transport_error(KeyError("x"))
    assert semconv.error_type(requests.ConnectionError()) == "requests.exceptions.ConnectionError"
    assert semconv.error_type(TimeoutError()) == "TimeoutError"


class _Route:
    def __init__(self, path: str) -> None:
        self.path = path


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({}, None),
        ({"route": object()}, None),
        ({"route": _Route("/users/{id}")}, "/users/{id}"),
        ({"route": _Route("/things/{id}"), "root_path": "/api", "app_root_path": ""},
         "/api/things/{id}"),
        ({"route": _Route("/x"), "root_path": "/prefix"}, "/x"),  # the server's own root path
    ],
)  # fmt: skip
def test_route_of_asgi_scope(scope, expected):
    assert route_of(scope) == expected


def test_the_doc_lists_every_attribute_pair_and_secret_name():
    doc = (Path(__file__).parents[2] / "docs" / "instrumentors" / "http.md").read_text()
    rows = {
        tuple(cell.strip().strip("`") for cell in line.strip("|").split("|"))
        for line in doc.splitlines()
        if line.startswith("| ")
    }

    for concept, (stable, old) in semconv.HTTP_ATTRIBUTES.items():
        assert (concept, stable or "", old or "") in rows, concept
    for name in URL_SECRET_NAMES:
        assert f"`{name}`" in doc.lower().replace("-", "_"), name
