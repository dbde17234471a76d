"""Booking API: the booking seed's FastAPI backend, monitored with otel-sentry-biz.

    python examples/booking_api/app.py            # a scripted session; prints what Sentry got
    python examples/booking_api/app.py --serve    # serve on 127.0.0.1:8000 until Ctrl-C
    SENTRY_DSN=https://<key>@<host>/<project> python examples/booking_api/app.py

FastAPI served by uvicorn on 127.0.0.1, SQLAlchemy on SQLite (a file in a temporary
directory), and a Celery worker in the same process (``CELERY_BROKER_URL``, by default the
in-memory transport) that notifies customers. Without ``SENTRY_DSN`` a local receiver plays
Sentry. The scripted session books a slot, books it twice, pays with a declined card, then
a good one, asks for a booking that does not exist and for the receipt of an unpaid booking
(a bug), and reads ``/health``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import uvicorn
from api import create_app
from celery.contrib.testing.worker import start_worker
from payments import Gateway
from sqlalchemy import create_engine
from tables import Base, SessionLocal
from tasks import celery_app

import otel_sentry_biz as biz
from otel_sentry_biz.demo import report
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz_instrumentors.celery import CeleryInstrumentor
from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor

RESOURCE = {
    "service.name": "booking-api",
    "service.version": "2.0.0",
    "deployment.environment.name": "example",
}
#: The processor's public test cards: one it declines, one it charges.
DECLINED_CARD = "4000 0000 0000 0002"
GOOD_CARD = "4242 4242 4242 4242"
SLOT = {"barber": "sam", "starts_at": "2030-07-04T10:00", "service": "haircut"}


@contextmanager
def serving(app: Any, port: int, log_level: str) -> Iterator[str]:
    """``app`` behind uvicorn on 127.0.0.1, in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def scripted_session(base_url: str) -> list[str]:
    """What a customer and the front desk do; a line per request with its answer."""
    lines, tasks = [], []
    with httpx.Client(base_url=base_url, headers={"X-User-Id": "u-42"}, timeout=10) as client:

        def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            answer = client.request(method, path, **kwargs)
            is_json = answer.headers.get("content-type") == "application/json"
            body = answer.json() if is_json else {"detail": answer.text}
            if "notification_task" in body:
                tasks.append(body["notification_task"])
            summary = body.get("status") or body.get("detail") or body
            lines.append(f"{method} {path} -> {answer.status_code} {summary}")
            return body

        health = call("GET", "/health")
        booked = call("POST", "/bookings", json={"customer": "ana@example.com", **SLOT})
        call("POST", "/bookings", json={"customer": "ben@example.com", **SLOT})
        pay = f"/bookings/{booked['id']}/payment"
        call("POST", pay, json={"card_number": DECLINED_CARD})
        call("POST", pay, json={"card_number": GOOD_CARD})
        call("GET", f"/bookings/{booked['id']}/receipt")
        call("GET", "/bookings/999")
        unpaid = call(
            "POST",
            "/bookings",
            json={"customer": "cy@example.com", **SLOT, "starts_at": "2030-07-04T11:00"},
        )
        for task in tasks:  # the notifications, sent by the worker
            celery_app.AsyncResult(task).get(timeout=15, interval=0.05)
        final = call("GET", f"/bookings/{booked['id']}")
        # Last: uvicorn closes the connection of a request whose app raised.
        call("GET", f"/bookings/{unpaid['id']}/receipt")
    lines.append(f"Booking {booked['id']}: notifications {final['notifications']}")
    lines.append(f"/health answered: {json.dumps(health, sort_keys=True)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000, help="port of --serve (default 8000)")
    args = parser.parse_args(argv)
    # INFO records become breadcrumbs of the errors that follow (the root logger's level is
    # WARNING: without this line they would never reach any handler).
    logging.getLogger("booking").setLevel(logging.INFO)
    receiver = None if os.environ.get("SENTRY_DSN", "").strip() else LocalReceiver().start()
    pipeline = biz.configure(
        dsn=receiver.dsn if receiver else None, traces_sample_rate=1.0, resource=RESOURCE
    )
    CeleryInstrumentor().instrument()
    with tempfile.TemporaryDirectory(prefix="booking-") as scratch:
        engine = create_engine(f"sqlite:///{scratch}/booking.sqlite3")
        Base.metadata.create_all(engine)  # start-up, not a request: before the instrumentor
        SQLAlchemyInstrumentor().instrument()
        SessionLocal.configure(bind=engine)
        app = create_app(Gateway())
        worker = start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING")
        # The session's report shows the planted bug's error: uvicorn need not print it too.
        port, log_level = (args.port, "info") if args.serve else (0, "critical")
        with worker, serving(app, port, log_level) as url:
            if args.serve:
                print(f"Booking API on {url} (Ctrl-C stops it)", flush=True)
                with suppress(KeyboardInterrupt):
                    threading.Event().wait()
                outcome = []
            else:
                outcome = scripted_session(url)
        engine.dispose()
    delivered = pipeline.force_flush(30_000)
    stats = pipeline.exporter.stats() if pipeline.exporter else {"events": {}}
    pipeline.shutdown()
    print("\n".join(outcome))
    if receiver is None:
        print(f"Sent to SENTRY_DSN: {stats['events']}")
    else:
        print(report.render(receiver.events(), f"local receiver on 127.0.0.1:{receiver.port}"))
        receiver.stop()
    if not delivered:
        print(f"Not everything was delivered: {stats}", file=sys.stderr)
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
