"""The booking API's background work: a Celery task that notifies the customer.

The broker is ``CELERY_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/0``), by default Celery's
in-memory transport, served by the worker that ``app.py`` runs in the same process. Nothing
here is about monitoring: the Celery instrumentor makes each run a transaction of the
request's trace, with the booking id that the request chose to propagate.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from tables import Booking, Notification, SessionLocal

log = logging.getLogger("booking.tasks")

celery_app = Celery(
    "booking",
    broker=os.environ.get("CELERY_BROKER_URL") or "memory://localhost/",
    # The worker runs in this process (app.py), so results can stay in its memory.
    backend="cache+memory://",
)
# BOOKING_QUEUE: a queue of its own per run, when several runs share one Redis (the tests do).
celery_app.conf.task_default_queue = os.environ.get("BOOKING_QUEUE") or "booking"
# The worker looks for new messages this often (kombu's default is every second).
celery_app.conf.broker_transport_options = {"polling_interval": 0.1}

@celery_app.task(name="booking.notify_customer")
def notify_customer(booking_id: int, kind: str) -> str:
    """Send the customer their booking ``confirmation`` or payment ``receipt``."""
    with SessionLocal() as db:
        booking = db.get(Booking, booking_id)
        db.add(Notification(booking_id=booking.id, kind=kind))
        db.commit()
        log.info("Sent the %s of booking %s", kind, booking_id)
    return f"{kind} sent for booking {booking_id}"
