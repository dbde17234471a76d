"""Orders service: one request touches SQLAlchemy, a thread pool, Celery and HTTP.

Run it with zero tracing code beyond the WSGI middleware:

    SENTRY_DSN=... SENTRY_TRACES_SAMPLE_RATE=1.0 opentelemetry-instrument python app.py

``GET /orders/<id>`` reads the order with SQLAlchemy, asks the pricing service for its price
over HTTP from a thread pool, and has a Celery task notify the customer (an in-process worker
on the memory broker, so nothing else needs to run). Every step lands in one trace in Sentry:
the orders transaction with its db, http.client and queue.publish spans, the pricing
service's transaction and the Celery task's transaction, tagged with the business context.
``GET /shutdown`` stops it (the test suite drives it this way).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy import create_engine, text

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.http import BizWSGIMiddleware

engine = create_engine(f"sqlite:///{tempfile.mkdtemp(prefix='orders-')}/orders.sqlite3")
with engine.begin() as connection:
    connection.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)"))
    connection.execute(text("INSERT INTO orders VALUES (1, 'ACME'), (2, 'Globex'), (3, 'Initech')"))

celery_app = Celery("orders", broker="memory://", backend="cache+memory://")


@celery_app.task(name="orders.notify")
def notify(order_id: int) -> str:
    return f"customer of order {order_id} notified"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _json(start_response, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [data]


def pricing(environ, start_response):
    order_id = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
    return _json(start_response, "200 OK", {"order_id": order_id, "price": 10.0 * order_id})


def orders(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/shutdown":
        threading.Thread(target=stop.set).start()
        return _json(start_response, "200 OK", {"stopping": True})
    order_id = int(path.rsplit("/", 1)[-1])
    with engine.connect() as connection:
        (customer,) = connection.execute(
            text("SELECT customer FROM orders WHERE id = :id"), {"id": order_id}
        ).one()
    with biz.context(customer=customer, order_id=str(order_id), propagate=["order_id"]):
        with ThreadPoolExecutor(max_workers=2) as pool:
            price = pool.submit(
                lambda: requests.get(f"{PRICING_URL}/prices/{order_id}", timeout=5).json()
            ).result()["price"]
        notify.delay(order_id).get(timeout=10)
    return _json(start_response, "200 OK", {"order_id": order_id, "price": price})


stop = threading.Event()
pricing_server = make_server(
    "127.0.0.1", 0, BizWSGIMiddleware(pricing), _ThreadingServer, handler_class=_Quiet
)
PRICING_URL = f"http://127.0.0.1:{pricing_server.server_port}"

if __name__ == "__main__":
    orders_server = make_server(
        "127.0.0.1",
        int(os.environ.get("PORT", "0")),
        BizWSGIMiddleware(orders),
        _ThreadingServer,
        handler_class=_Quiet,
    )
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        for server in (pricing_server, orders_server):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"listening on http://127.0.0.1:{orders_server.server_port}", flush=True)
        stop.wait()
        orders_server.shutdown()
        pricing_server.shutdown()
