"""The billing database: customers, the staged work-request lines, invoices (SQLAlchemy ORM)."""

from __future__ import annotations

from typing import Optional

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    name: Mapped[str] = mapped_column(primary_key=True)
    #: Sales-tax rate; None when the customer's tax details were never filed.
    tax_rate: Mapped[Optional[float]]


class Line(Base):
    """One line of a work request, as keyed in by a field office (dates kept as keyed)."""

    __tablename__ = "lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_request: Mapped[str]
    customer: Mapped[str]
    foreman: Mapped[str]
    item: Mapped[str]
    quantity: Mapped[float]
    unit_price: Mapped[float]
    work_date: Mapped[str]
    entered_at: Mapped[str]
    #: staged -> billed, or rejected by the batch check.
    status: Mapped[str] = mapped_column(default="staged")


class Invoice(Base):
    __tablename__ = "invoices"

    work_request: Mapped[str] = mapped_column(primary_key=True)
    customer: Mapped[str]
    subtotal: Mapped[float]
    tax: Mapped[float]
    total: Mapped[float]
