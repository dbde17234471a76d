"""Billing: the billing seed's work-request processing, on SQLAlchemy and SQLite.

    python examples/billing/app.py            # a local receiver; prints what Sentry would show
    SENTRY_DSN=https://<key>@<host>/<project> python examples/billing/app.py

A batch of work-request lines (``work_request_lines.csv``) is staged in SQLite, scored by
``validate_batch`` (unusable rows are set aside), then each work request is billed line by
line and invoiced. The billing rule set judges every line on its own: nothing in this file
decides what is an anomaly. One customer has no tax rate on file, so its invoice fails: a
CRITICAL error, with what the app logged before it as breadcrumbs.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
import tempfile
from pathlib import Path

from rules import billing_rules
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from tables import Base, Customer, Invoice, Line

import otel_sentry_biz as biz
from otel_sentry_biz.demo import report
from otel_sentry_biz.receiver import LocalReceiver
from otel_sentry_biz_instrumentors.sqlalchemy import SQLAlchemyInstrumentor

BATCH = Path(__file__).with_name("work_request_lines.csv")
RESOURCE = {
    "service.name": "billing-example",
    "service.version": "1.0.0",
    "deployment.environment.name": "example",
}
#: Sales-tax rate per customer. Umbrella Gas never filed its tax details.
TAX_RATES = {
    "ACME Utilities": 0.0725,
    "Globex Water": 0.06,
    "Initech Power": 0.0825,
    "Umbrella Gas": None,
}
#: What a usable line looks like. Plausibility (limits, duplicates, dates) is the rules' job.
LINE_SCHEMA = biz.Schema(
    {
        "work_request": {"type": "str", "pattern": r"WR-\d{4}"},
        "customer": {"type": "str", "allowed": sorted(TAX_RATES)},
        "foreman": "str",
        "item": "str",
        "quantity": {"type": "number", "min": 0},
        "unit_price": {"type": "number", "min": 0},
        "work_date": "date",
        "entered_at": "datetime",
    },
    name="work_request_lines",
)

log = logging.getLogger("billing")


class InvoiceError(Exception):
    """An invoice cannot be issued."""


def load_batch(session: Session, path: Path) -> tuple[biz.QualityResult, list[str]]:
    """Stage the batch's lines, score them, set the unusable ones aside.

    Returns the batch's quality and the work requests left to bill.
    """
    with biz.operation("load_batch", op="billing.load", batch=path.name):
        Base.metadata.create_all(session.get_bind())
        session.add_all(Customer(name=name, tax_rate=rate) for name, rate in TAX_RATES.items())
        with path.open(newline="") as keyed:
            for row in csv.DictReader(keyed):
                row["quantity"], row["unit_price"] = (
                    float(row["quantity"]),
                    float(row["unit_price"]),
                )
                session.add(Line(**row))
        session.commit()
        lines = session.scalars(select(Line).order_by(Line.id)).all()
        quality = biz.validate_batch(lines, LINE_SCHEMA)
        for index in quality.error_rows:
            lines[index].status = "rejected"
        # Read before the commit: it expires every loaded line, and reading them after it
        # would run one SELECT per line (the SQLAlchemy instrumentor reports an n_plus_one).
        numbers = sorted({line.work_request for line in lines if line.status == "staged"})
        session.commit()
        log.info("Batch %s: %d lines, quality %.1f", path.name, quality.rows, quality.score)
        return quality, numbers


def process_work_request(session: Session, number: str) -> bool:
    """Bill the staged lines of work request ``number`` and invoice it; False when it failed."""
    with biz.operation("process_work_request", op="billing.work_request", work_request=number):
        lines = session.scalars(
            select(Line)
            .where(Line.work_request == number, Line.status == "staged")
            .order_by(Line.id)
        ).all()
        customer = lines[0].customer
        biz.record(customer=customer)
        with biz.context(customer=customer):
            log.info("Pricing %d lines of %s for %s", len(lines), number, customer)
            subtotal = sum(bill_line(line) for line in lines)
            try:
                generate_invoice(session, number, customer, subtotal)
            except InvoiceError:
                # Already reported from generate_invoice's span, CRITICAL; the batch goes on.
                session.rollback()
                return False
    return True


@biz.operation("bill_line", op="billing.line")
def bill_line(line: Line) -> float:
    amount = round(line.quantity * line.unit_price, 2)
    # One span per line with its amount AND quantity: what the billing rule set judges.
    biz.record(
        customer=line.customer,
        foreman=line.foreman,
        item=line.item,
        quantity=line.quantity,
        unit_price=line.unit_price,
        amount=amount,
        work_date=line.work_date,
        entered_at=line.entered_at,
    )
    line.status = "billed"
    return amount


@biz.operation(
    "generate_invoice", op="billing.invoice", impact="CRITICAL", category="business_logic"
)
def generate_invoice(session: Session, number: str, customer: str, subtotal: float) -> Invoice:
    log.info("Generating the invoice of %s: subtotal $%.2f", number, subtotal)
    rate = session.get(Customer, customer).tax_rate
    if rate is None:
        raise InvoiceError(f"no sales-tax rate on file for {customer}: cannot invoice {number}")
    tax = round(subtotal * rate, 2)
    invoice = Invoice(
        work_request=number, customer=customer, subtotal=subtotal, tax=tax, total=subtotal + tax
    )
    session.add(invoice)
    session.commit()
    return invoice


def run(session: Session) -> str:
    """Load the batch and bill every work request in it; a one-line summary."""
    quality, numbers = load_batch(session, BATCH)
    failed = [number for number in numbers if not process_work_request(session, number)]
    return (
        f"Billed {len(numbers) - len(failed)} of {len(numbers)} work requests "
        f"(failed: {', '.join(failed) or 'none'}); batch quality {quality.score:.1f}/100, "
        f"{len(quality.error_rows)} lines set aside."
    )


def main() -> int:
    # INFO records become breadcrumbs of the errors that follow (the root logger's level is
    # WARNING: without this line they would never reach any handler).
    log.setLevel(logging.INFO)
    receiver = None if os.environ.get("SENTRY_DSN", "").strip() else LocalReceiver().start()
    pipeline = biz.configure(
        dsn=receiver.dsn if receiver else None,
        traces_sample_rate=1.0,
        resource=RESOURCE,
        rules=[billing_rules()],
    )
    SQLAlchemyInstrumentor().instrument()
    with tempfile.TemporaryDirectory(prefix="billing-") as scratch:
        engine = create_engine(f"sqlite:///{scratch}/billing.sqlite3")
        with Session(engine) as session:
            summary = run(session)
        engine.dispose()
    delivered = pipeline.force_flush(30_000)
    stats = pipeline.exporter.stats()
    pipeline.shutdown()
    print(summary)
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
