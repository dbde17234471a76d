"""The demo workload: the billing seed's work-request processing, on SQLite.

Work requests with lines (quantity x unit price), a foreman and a customer are loaded from a
real SQLite database, priced, checked and invoiced. Planted in the data, as in the billing
seed: a work request over $15,000, an implausible unit price, a work request with two
foremen, a declined payment (handled, CRITICAL) and an ERP upload that fails (unhandled).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_sentry_biz as biz

_tracer = trace.get_tracer("otel_sentry_biz.demo")

WORK_REQUEST_LIMIT = 15_000.0
UNIT_PRICE_RANGE = (0.01, 500.0)

#: (work request, customer, foreman, [(item, quantity, unit price)]) — anomalies planted.
LINES: tuple[tuple[str, str, str, str, float, float], ...] = (
    ("WR-1001", "ACME Utilities", "Ramirez", "trench-meter", 40, 95.0),
    ("WR-1001", "ACME Utilities", "Ramirez", "pipe-install", 12, 140.0),
    ("WR-1002", "Globex Water", "Chen", "hydrant-service", 3, 310.0),
    ("WR-1003", "Initech Power", "Okafor", "pole-replacement", 25, 480.0),  # $12,000
    ("WR-1003", "Initech Power", "Okafor", "transformer", 8, 495.0),  # pushes WR over $15k
    ("WR-1004", "ACME Utilities", "Ramirez", "valve-repair", 4, 1250.0),  # unit price > $500
    ("WR-1005", "Globex Water", "Chen", "meter-read", 120, 12.5),
    ("WR-1005", "Globex Water", "Novak", "meter-read", 80, 12.5),  # second foreman
    ("WR-1006", "Umbrella Gas", "Okafor", "leak-survey", 10, 85.0),  # payment declined
    ("WR-1007", "Initech Power", "Chen", "line-clearance", 8, 220.0),  # ERP upload fails
)
PAYMENT_DECLINED = "WR-1006"
ERP_DOWN = "WR-1007"


class PaymentDeclined(Exception):
    """The customer's card was refused (a billing error: CRITICAL by default)."""


@dataclass
class Outcome:
    processed: int = 0
    failed: int = 0


def open_database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(
        "CREATE TABLE lines (work_request TEXT, customer TEXT, foreman TEXT, item TEXT,"
        " quantity REAL, unit_price REAL)"
    )
    db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?)", LINES)
    return db


@contextmanager
def _query(statement: str) -> Iterator[None]:
    # Hand-made db spans until the SQLAlchemy instrumentor is in use: stable semconv names.
    attributes = {
        "db.system.name": "sqlite",
        "db.namespace": "billing",
        "db.query.text": statement,
        "db.operation.name": statement.split()[0].upper(),
    }
    with _tracer.start_as_current_span(
        statement.split(" WHERE")[0], kind=SpanKind.CLIENT, attributes=attributes
    ):
        yield


def run(db: sqlite3.Connection) -> Outcome:
    """Process every work request; return how many went through and how many failed."""
    outcome = Outcome()
    with (
        biz.operation("load_work_requests", op="billing.load"),
        _query("SELECT DISTINCT work_request FROM lines"),
    ):
        numbers = [row[0] for row in db.execute("SELECT DISTINCT work_request FROM lines")]
    for number in numbers:
        try:
            process_work_request(db, number)
            outcome.processed += 1
        except ConnectionError:
            outcome.failed += 1  # already reported from its span, with business impact
    return outcome


def process_work_request(db: sqlite3.Connection, number: str) -> None:
    statement = (
        "SELECT customer, foreman, item, quantity, unit_price FROM lines WHERE work_request = ?"
    )
    with _tracer.start_as_current_span(
        "process_work_request",
        kind=SpanKind.SERVER,
        attributes={"sentry.op": "billing.work_request"},
    ) as root:
        with _query(statement):
            rows = db.execute(statement, (number,)).fetchall()
        customer = rows[0][0]
        with biz.context(work_request=number, customer=customer, propagate=["work_request"]):
            biz.record(work_request=number, customer=customer)
            total = price_lines(number, rows)
            check_consistency(number, rows)
            root.set_attribute("biz.amount", total)
            invoice(number, customer, total)
            upload_to_erp(number, total)


@biz.operation("price_lines", op="billing.price")
def price_lines(number: str, rows: list[tuple]) -> float:
    total = 0.0
    for _customer, _foreman, item, quantity, unit_price in rows:
        low, high = UNIT_PRICE_RANGE
        if not low <= unit_price < high:
            biz.violation(
                "unit_price_range",
                "HIGH",
                f"{number}: unit price ${unit_price:,.2f} for {item} is outside "
                f"${low:,.2f}-${high:,.2f}",
                category="data_quality",
                group=number,
                work_request=number,
                unit_price=unit_price,
                item=item,
            )
        total += quantity * unit_price
    biz.record(amount=total, lines=len(rows))
    if total > WORK_REQUEST_LIMIT:
        biz.violation(
            "work_request_limit",
            "HIGH",
            f"{number}: total ${total:,.2f} exceeds ${WORK_REQUEST_LIMIT:,.0f}",
            group=number,
            work_request=number,
            amount=total,
        )
    return total


@biz.operation("check_consistency", op="billing.validate")
def check_consistency(number: str, rows: list[tuple]) -> None:
    foremen = sorted({row[1] for row in rows})
    if len(foremen) > 1:
        biz.violation(
            "one_foreman_per_work_request",
            "MEDIUM",
            f"{number} has {len(foremen)} foremen: {', '.join(foremen)}",
            category="data_quality",
            group=number,
            work_request=number,
            foremen=foremen,
        )


@biz.operation("invoice", op="billing.invoice")
def invoice(number: str, customer: str, total: float) -> None:
    if number == PAYMENT_DECLINED:
        try:
            raise PaymentDeclined(f"card refused for {customer} (${total:,.2f})")
        except PaymentDeclined as exc:
            biz.capture_error(
                exc, impact="CRITICAL", category="business_logic", work_request=number
            )


def upload_to_erp(number: str, total: float) -> None:
    with _tracer.start_as_current_span(
        "POST",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": "POST",
            "url.full": "http://127.0.0.1:8069/erp/invoices",
            "server.address": "127.0.0.1",
            "server.port": 8069,
        },
    ) as span:
        if number == ERP_DOWN:
            span.set_attribute("http.response.status_code", 503)
            span.set_status(Status(StatusCode.ERROR))
            raise ConnectionError(f"ERP refused the upload of {number}: 503 Service Unavailable")
        span.set_attribute("http.response.status_code", 201)
