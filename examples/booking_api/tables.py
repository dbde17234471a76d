"""The booking API's tables: bookings, payment attempts and the notifications sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

#: Bound to the app's engine at start-up (``SessionLocal.configure(bind=engine)``); the API
#: and the Celery worker both open their sessions from it.
SessionLocal = sessionmaker()


class Base(DeclarativeBase):
    pass


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(120))
    barber: Mapped[str] = mapped_column(String(60), index=True)
    starts_at: Mapped[str] = mapped_column(String(16))  # ISO minute: "2030-07-04T10:00"
    service: Mapped[str] = mapped_column(String(40))
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    status: Mapped[str] = mapped_column(String(16), default="booked")
    payments: Mapped[list[Payment]] = relationship(back_populates="booking")
    notifications: Mapped[list[Notification]] = relationship(back_populates="booking")

    @property
    def settled_payment(self) -> Optional[Payment]:
        """The payment that went through, if any."""
        return next((p for p in self.payments if p.status == "succeeded"), None)


class Payment(Base):
    """One attempt to charge a card: only the last four digits are ever stored."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    charge_id: Mapped[Optional[str]] = mapped_column(String(40), default=None)
    decline_code: Mapped[Optional[str]] = mapped_column(String(40), default=None)
    booking: Mapped[Booking] = relationship(back_populates="payments")


class Notification(Base):
    """A message the worker sent about a booking (``confirmation``, ``receipt``)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    kind: Mapped[str] = mapped_column(String(20))
    booking: Mapped[Booking] = relationship(back_populates="notifications")
