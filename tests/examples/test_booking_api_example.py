"""examples/booking_api: the booking seed's FastAPI backend on api_endpoint, db_operation, the
domain-error helpers, the Celery instrumentor and health().

The scripted session runs once per module against a real receiver (uvicorn, SQLite and an
in-process Celery worker inside the app); each test reads one part of what arrived. The
receiver also keeps each envelope's bytes as they came over the wire, where the card numbers
are looked for.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import clean_env, serving
from tests.examples.conftest import EXAMPLES, ExampleRun, run_example
from tests.instrumentors.test_celery_redis import BROKER, redis_unavailable

pytestmark = pytest.mark.slow

#: The session's cards, as typed and as bare digits: none may reach Sentry in any form.
CARDS = ("4000 0000 0000 0002", "4242 4242 4242 4242")
CUSTOMERS = ("ana@example.com", "ben@example.com", "cy@example.com")
SESSION = [
    "GET /health -> 200 healthy",
    "POST /bookings -> 201 booked",
    "POST /bookings -> 409 sam is already booked at 2030-07-04T10:00",
    "POST /bookings/1/payment -> 402 card declined: card_declined",
    "POST /bookings/1/payment -> 200 paid",
    "GET /bookings/1/receipt -> 200 {'booking_id': 1, 'charge_id': 'ch_000001', 'amount': '35.00'}",
    "GET /bookings/999 -> 404 no booking 999",
    "POST /bookings -> 201 booked",
    "GET /bookings/1 -> 200 paid",
    "GET /bookings/2/receipt -> 500 Internal Server Error",
    "Booking 1: notifications ['confirmation', 'receipt']",
]
#: Transactions by name: one per request, one per notification the worker sent.
TRANSACTIONS = {
    "GET /health": 1,
    "POST /bookings": 3,
    "POST /bookings/{booking_id}/payment": 2,
    "GET /bookings/{booking_id}/receipt": 2,
    "GET /bookings/{booking_id}": 2,
    "booking.notify_customer": 3,
}


@dataclass(frozen=True)
class Session:
    run: ExampleRun
    wire: list[bytes]  # each envelope as received (decompressed)

    def trace_of(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        trace_id = event["contexts"]["trace"]["trace_id"]
        return [e for e in self.run.events if e["contexts"]["trace"]["trace_id"] == trace_id]

    def requests(self, name: str, status_code: int) -> list[dict[str, Any]]:
        return [
            t
            for t in self.run.transactions
            if t["transaction"] == name
            and t["contexts"]["trace"]["data"]["http.response.status_code"] == status_code
        ]

    def error(self, exception_type: str) -> dict[str, Any]:
        (error,) = [
            e for e in self.run.errors if e["exception"]["values"][-1]["type"] == exception_type
        ]
        return error


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    wire = tmp_path_factory.mktemp("wire")
    run = run_example("booking_api", tmp_path_factory.mktemp("booking_api"), store_dir=wire)
    return Session(run, [path.read_bytes() for path in sorted(wire.iterdir())])


def test_the_session_gets_the_answers_a_client_expects(session: Session) -> None:
    lines = session.run.stdout.splitlines()
    assert lines[: len(SESSION)] == SESSION
    assert lines[len(SESSION) + 1] == "Sent to SENTRY_DSN: {'transaction': 13, 'error': 3}"


def test_health_reports_the_sentry_bridge_and_its_queue(session: Session) -> None:
    line = session.run.stdout.splitlines()[len(SESSION)]
    prefix = "/health answered: "
    assert line.startswith(prefix)
    health = json.loads(line[len(prefix) :])
    assert health["status"] == "healthy"
    assert health["database"] == "ok"
    sentry = health["sentry"]
    assert (sentry["enabled"], sentry["dsn_configured"]) == (True, True)
    assert (sentry["queue_depth"], sentry["dropped"], sentry["last_error"]) == (0, {}, None)
    assert (sentry["sample_rate"], sentry["traces_sample_rate"]) == (1.0, 1.0)
    (request,) = session.requests("GET /health", 200)
    assert [s["description"] for s in request["spans"] if s["op"] == "db"] == ["SELECT ?"]


def test_each_request_is_one_trace_from_the_server_through_the_db_to_the_celery_task(
    session: Session,
) -> None:
    assert Counter(t["transaction"] for t in session.run.transactions) == TRANSACTIONS
    requests = [
        t for t in session.run.transactions if t["contexts"]["trace"]["op"] == "http.server"
    ]
    assert len({t["contexts"]["trace"]["trace_id"] for t in requests}) == len(requests) == 10
    tasks = [t for t in session.run.transactions if t["contexts"]["trace"]["op"] == "queue.process"]
    published = []
    for task in tasks:
        trace = session.trace_of(task)
        (request,) = [t for t in trace if t.get("type") == "transaction" and t is not task]
        assert request["transaction"] in ("POST /bookings", "POST /bookings/{booking_id}/payment")
        spans = {span["span_id"]: span for span in request["spans"]}
        queries = [
            s for s in request["spans"] if s.get("data", {}).get("db.system.name") == "sqlite"
        ]
        assert any(q["description"].startswith("INSERT INTO") for q in queries), queries
        publish = spans[task["contexts"]["trace"]["parent_span_id"]]
        assert (publish["op"], publish["description"]) == (
            "queue.publish",
            "booking.notify_customer",
        )
        endpoint = spans[publish["parent_span_id"]]
        assert endpoint["data"]["biz.endpoint"] == endpoint["description"]
        # The booking id was chosen to travel with the message: the task is tagged with it.
        assert task["tags"]["booking_id"] == request["tags"]["booking_id"]
        writes = [s["description"] for s in task["spans"] if s["op"] == "db"]
        assert any(w.startswith("INSERT INTO notifications") for w in writes), writes
        published.append(request["transaction"])
    assert Counter(published) == {"POST /bookings": 2, "POST /bookings/{booking_id}/payment": 1}


def test_the_slot_check_is_a_db_operation_around_its_queries(session: Session) -> None:
    for request in session.requests("POST /bookings", 201) + session.requests(
        "POST /bookings", 409
    ):
        (reserve,) = [s for s in request["spans"] if s["description"] == "reserve_slot bookings"]
        assert reserve["op"] == "db"
        assert reserve["data"]["db.collection.name"] == "bookings"
        inside = [s for s in request["spans"] if s.get("parent_span_id") == reserve["span_id"]]
        assert inside and all(s["data"]["db.system.name"] == "sqlite" for s in inside)
        assert inside[0]["description"].startswith("SELECT bookings.id")
        assert reserve["status"] == "ok"  # a taken slot is the operation's answer, not a failure


def test_a_double_booking_is_a_booking_error_with_its_context(session: Session) -> None:
    error = session.error("SlotTaken")
    exception = error["exception"]["values"][-1]
    assert exception["value"] == "sam is already booked at 2030-07-04T10:00"
    assert exception["mechanism"]["handled"] is True
    assert exception["stacktrace"]["frames"][-1]["function"] == "reserve_slot"
    tags = error["tags"]
    assert (tags["business_impact"], tags["error_category"], tags["error_domain"]) == (
        "HIGH",
        "business_logic",
        "booking",
    )
    assert (tags["barber"], tags["starts_at"], tags["service"]) == (
        "sam",
        "2030-07-04T10:00",
        "haircut",
    )
    assert (tags["endpoint"], error["transaction"], error["level"]) == (
        "create_booking",
        "POST /bookings",
        "error",
    )
    (conflict,) = session.requests("POST /bookings", 409)
    assert conflict in session.trace_of(error)
    assert conflict["contexts"]["trace"]["status"] == "already_exists"


def test_a_declined_card_is_a_critical_payment_error_with_its_context(session: Session) -> None:
    error = session.error("CardDeclined")
    exception = error["exception"]["values"][-1]
    # The processor put the card number in its message; Sentry gets it filtered.
    assert exception["value"] == "Your card [Filtered] was declined (card_declined)"
    assert exception["mechanism"]["handled"] is True
    assert exception["stacktrace"]["frames"][-1]["abs_path"].endswith("booking_api/payments.py")
    tags = error["tags"]
    assert (tags["business_impact"], tags["error_category"], tags["error_domain"]) == (
        "CRITICAL",
        "business_logic",
        "payment",
    )
    assert error["level"] == "fatal"
    assert {k: tags[k] for k in ("currency", "payment_provider", "payment_id", "decline_code")} == {
        "currency": "USD",
        "payment_provider": "fakepay",
        "payment_id": "1",
        "decline_code": "card_declined",
    }
    assert (tags["booking_id"], tags["card_last4"], tags["endpoint"]) == (
        "1",
        "0002",
        "pay_booking",
    )
    assert error["contexts"]["span"]["attributes"]["biz.amount"] == 35.0
    # What the app logged before reporting it, as logged: with the card number, filtered.
    assert [(c["category"], c["level"], c["message"]) for c in error["breadcrumbs"]["values"]] == [
        (
            "booking.api",
            "info",
            "Payment 1 of booking 1 failed: Your card [Filtered] was declined (card_declined)",
        )
    ]
    (declined,) = session.requests("POST /bookings/{booking_id}/payment", 402)
    assert declined in session.trace_of(error)


def test_no_card_number_or_customer_address_reaches_sentry(session: Session) -> None:
    assert len(session.wire) >= 2  # the envelopes of the errors, at least
    # Where the number was: the error's message and the breadcrumb of the app's log record.
    assert sum(raw.count(b"Your card [Filtered] was declined") for raw in session.wire) == 2
    for raw in session.wire:
        text = raw.decode("utf-8")
        for card in CARDS:
            for form in (card, card.replace(" ", ""), card.replace(" ", "-")):
                assert form not in text
        # No 16-digit run of either Visa test card; not inside a hex id, where such a run
        # turns up by chance (a trace id holds one about once in a thousand).
        assert not re.search(r"(?<![0-9a-f])4[0-9]{15}(?![0-9a-f])", text)
        for customer in CUSTOMERS:
            assert customer not in text


def test_client_mistakes_are_answers_not_errors(session: Session) -> None:
    # 404, 409 and 402 are answers; the two business failures behind 409 and 402 are reported
    # once each, by the app, and no HTTPException is.
    types = Counter(e["exception"]["values"][-1]["type"] for e in session.run.errors)
    assert types == {"SlotTaken": 1, "CardDeclined": 1, "AttributeError": 1}
    (missing,) = session.requests("GET /bookings/{booking_id}", 404)
    assert missing["contexts"]["trace"]["status"] == "not_found"
    assert session.trace_of(missing) == [missing]


def test_an_unexpected_error_is_reported_with_its_stack(session: Session) -> None:
    error = session.error("AttributeError")
    exception = error["exception"]["values"][-1]
    assert exception["value"] == "'NoneType' object has no attribute 'charge_id'"
    origin = exception["stacktrace"]["frames"][-1]
    assert origin["function"] == "get_receipt"
    assert origin["abs_path"].endswith("examples/booking_api/api.py")
    assert origin["in_app"] is True
    assert error["tags"]["endpoint"] == "get_receipt"
    (failed,) = session.requests("GET /bookings/{booking_id}/receipt", 500)
    assert failed["contexts"]["trace"]["status"] == "internal_error"
    assert failed in session.trace_of(error)
    (paid,) = session.requests("GET /bookings/{booking_id}/receipt", 200)
    assert session.trace_of(paid) == [paid]


def test_the_unexpected_error_is_marked_unhandled(session: Session) -> None:
    exception = session.error("AttributeError")["exception"]["values"][-1]
    assert exception["mechanism"]["handled"] is False


def test_the_signed_in_user_is_on_each_answered_request(session: Session) -> None:
    users = Counter(
        t["contexts"]["trace"]["data"].get("user.id")
        for t in session.run.transactions
        if t["contexts"]["trace"]["op"] == "http.server"
        and t["contexts"]["trace"]["data"]["http.response.status_code"] != 500
    )
    assert users == {"u-42": 9}


def test_the_failed_request_knows_its_user(session: Session) -> None:
    (failed,) = session.requests("GET /bookings/{booking_id}/receipt", 500)
    assert failed["contexts"]["trace"]["data"].get("user.id") == "u-42"


def test_with_the_redis_broker_the_tasks_join_the_request_traces(tmp_path: Path) -> None:
    reason = redis_unavailable(BROKER)
    if reason:
        pytest.skip(reason)
    queue = f"booking-example-{uuid.uuid4().hex[:8]}"  # no other worker takes its tasks
    try:
        run = run_example("booking_api", tmp_path, CELERY_BROKER_URL=BROKER, BOOKING_QUEUE=queue)
    finally:
        forget_queue(BROKER, queue)
    tasks = [t for t in run.transactions if t["contexts"]["trace"]["op"] == "queue.process"]
    assert len(tasks) == 3
    for task in tasks:
        trace_id = task["contexts"]["trace"]["trace_id"]
        (request,) = [
            t
            for t in run.transactions
            if t["contexts"]["trace"]["trace_id"] == trace_id and t is not task
        ]
        (publish,) = [s for s in request["spans"] if s["op"] == "queue.publish"]
        assert publish["span_id"] == task["contexts"]["trace"]["parent_span_id"]
        assert publish["data"]["messaging.system"] == "redis"


def forget_queue(url: str, queue: str) -> None:
    """Remove what kombu keeps in Redis about ``queue`` (its empty list goes by itself)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    finally:
        client.close()


def test_serve_answers_until_interrupted_then_shows_what_sentry_got(tmp_path: Path) -> None:
    # No SENTRY_DSN: the app's own receiver, and its report when the server stops.
    command = [sys.executable, str(EXAMPLES / "booking_api" / "app.py"), "--serve", "--port", "0"]
    with serving(command, tmp_path, clean_env()) as (app, line):
        assert line.startswith("Booking API on http://127.0.0.1:"), app.stderr.read()
        base = line.split()[3]
        with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:
            assert json.loads(answer.read())["sentry"]["dsn_configured"] is True
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/bookings/7", timeout=10)
        missing.value.close()
        assert missing.value.code == 404
        app.send_signal(signal.SIGINT)
        out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    assert "Traceback" not in err, err
    assert "Transactions (2)" in out
    assert "Errors (0)" in out
    assert re.search(
        r"^  GET /bookings/\{booking_id\} +op=http.server +status=not_found", out, re.M
    )
