"""Log records become breadcrumbs without changing what the app's logging does.

``configure()`` must not add a handler to the root logger: ``logging.basicConfig()`` called
after it would do nothing, and an app that never configured logging would stop seeing its
warnings (Python's ``lastResort``, Flask's default handler) on stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from otel_sentry_biz.log_breadcrumbs import (
    LOG_EVENT,
    LOG_MESSAGE,
    install_breadcrumbs,
    uninstall_breadcrumbs,
)
from otel_sentry_biz.receiver import LocalReceiver
from tests.e2e.conftest import run_app
from tests.relay_oracle import assert_valid


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as running:
        yield running


def _logged(span: Any) -> list[str]:
    return [str(e.attributes[LOG_MESSAGE]) for e in span.events if e.name == LOG_EVENT]


def test_the_root_logger_keeps_its_handlers_and_every_logger_is_heard(finished, tracer):
    root_handlers = list(logging.getLogger().handlers)
    quiet = logging.getLogger("shop.quiet")  # handled on its own, like Celery's task loggers
    quiet.propagate, quiet.level = False, logging.INFO
    shop = logging.getLogger("shop.orders")
    shop.setLevel(logging.INFO)
    try:
        install_breadcrumbs()
        install_breadcrumbs()  # idempotent: still one breadcrumb per record
        assert logging.getLogger().handlers == root_handlers
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
            shop.info("order %s reserved", "O-1")
            quiet.info("not propagated, still a breadcrumb")
            shop.debug("below the breadcrumb level")
            logging.getLogger("otel_sentry_biz.test").warning("our own diagnostics")
        uninstall_breadcrumbs()
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
            shop.info("after uninstalling")
    finally:
        uninstall_breadcrumbs()
        quiet.propagate, quiet.level = True, logging.NOTSET
        shop.setLevel(logging.NOTSET)

    first, second = finished.get_finished_spans()
    assert _logged(first) == ["order O-1 reserved", "not propagated, still a breadcrumb"]
    assert _logged(second) == []


# -- a real app process: what its console shows, and what reaches Sentry -------------------

BASIC_CONFIG_APP = """
import logging
from opentelemetry import trace
import otel_sentry_biz as biz

biz.configure()
logging.basicConfig(level=logging.INFO, format="console: %(levelname)s %(message)s")
log = logging.getLogger("shop.checkout")

tracer = trace.get_tracer("shop")
try:
    with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER):
        log.info("cart loaded")
        log.warning("payment slow")
        raise ValueError("card expired")
except ValueError:
    pass
"""


@pytest.mark.slow
def test_basic_config_after_configure_still_logs_to_the_console(tmp_path, receiver):
    result = run_app(tmp_path, BASIC_CONFIG_APP, SENTRY_DSN=receiver.dsn)

    assert result.returncode == 0, result.stderr
    assert "console: INFO cart loaded" in result.stderr
    assert "console: WARNING payment slow" in result.stderr
    assert receiver.wait_for(lambda r: any("exception" in e for e in r.events()), timeout=20)
    (error,) = [event for event in receiver.events() if "exception" in event]
    crumbs = error["breadcrumbs"]["values"]
    assert [(c["level"], c["message"]) for c in crumbs] == [
        ("info", "cart loaded"),
        ("warning", "payment slow"),
    ]
    assert_valid(error)


UNCONFIGURED_APP = """
import logging
import flask
import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.http import instrument_flask_app

biz.configure()  # and no logging set-up at all
app = flask.Flask("shop")

@app.get("/boom")
def boom():
    logging.getLogger("inventory").warning("stock count negative")
    raise RuntimeError("inventory corrupt")

instrument_flask_app(app)
response = app.test_client().get("/boom")
assert response.status_code == 500 and b"Internal Server Error" in response.data
logging.getLogger("inventory").error("outside any request")
"""


@pytest.mark.slow
def test_an_app_without_logging_set_up_still_shows_its_warnings(tmp_path, receiver):
    pytest.importorskip("flask")
    result = run_app(tmp_path, UNCONFIGURED_APP, SENTRY_DSN=receiver.dsn)

    assert result.returncode == 0, result.stderr
    # Flask's own handler, which it adds only when no handler would take the record ...
    assert "ERROR in app: Exception on /boom [GET]" in result.stderr
    assert "RuntimeError: inventory corrupt" in result.stderr
    # ... and Python's last resort, for loggers nobody configured.
    assert "stock count negative\n" in result.stderr
    assert "outside any request\n" in result.stderr
    assert receiver.wait_for(lambda r: any("exception" in e for e in r.events()), timeout=20)
    (error,) = [event for event in receiver.events() if "exception" in event]
    messages = [crumb["message"] for crumb in error["breadcrumbs"]["values"]]
    assert "stock count negative" in messages
