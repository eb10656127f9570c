"""Products and the purchase history: orders and their lines. Money is kept in integer cents."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.models.base import Base, Timestamped, enum_column


class Product(Timestamped, Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(300))
    category: Mapped[str | None] = mapped_column(sa.String(100))
    price_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    active: Mapped[bool] = mapped_column(default=True)


class OrderKind(enum.StrEnum):
    PURCHASE = "purchase"
    # A cancellation reverses (part of) an earlier purchase; its lines have negative quantities.
    CANCELLATION = "cancellation"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # NULL for anonymous orders (e.g. imported rows without a customer id).
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id", ondelete="SET NULL"))
    kind: Mapped[OrderKind] = mapped_column(enum_column(OrderKind), default=OrderKind.PURCHASE)
    ordered_at: Mapped[datetime] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    total_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    country: Mapped[str | None] = mapped_column(sa.String(2))
    source: Mapped[str] = mapped_column(sa.String(20), default="crm")

    lines: Mapped[list[OrderLine]] = relationship(cascade="all, delete-orphan", back_populates="order")

    __table_args__ = (sa.Index("ix_orders_customer_ordered", "customer_id", "ordered_at"),)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"), index=True)
    quantity: Mapped[int]
    unit_price_cents: Mapped[int] = mapped_column(sa.BigInteger)
    line_total_cents: Mapped[int] = mapped_column(sa.BigInteger)

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship(lazy="joined")
