"""Orders and the customer figures derived from them (lifetime value, order count, first/last order).

Every order write goes through here so the derived figures on ``customers`` change in the same
transaction; ``refresh_customer_stats`` recomputes them from the orders for bulk writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import audit, clock, db, events
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import _, ngettext
from crm_core.models import Customer, Order, OrderKind, OrderLine, Product
from crm_core.services import products
from crm_core.uow import UnitOfWork

# Orders per pair of multi-row INSERTs in a bulk write.
BATCH = 2000
# Order lines one bulk request may carry.
MAX_BULK_LINES = 10_000
# An order's total, and each line's, stays within this (10 trillion in the currency): far beyond any
# real order, and far within what the 64-bit money columns hold.
MAX_TOTAL_CENTS = 10**15


@dataclass(frozen=True)
class LineInput:
    product_id: int
    quantity: int
    unit_price_cents: int | None = None


def get_order(uow: UnitOfWork, order_id: int) -> Order:
    order = uow.session.get(Order, order_id)
    if order is None:
        raise NotFound(_("there is no order #{id}", id=order_id))
    return order


def find_by_number(uow: UnitOfWork, number: str) -> Order | None:
    return uow.session.scalars(sa.select(Order).where(Order.number == number)).first()


def check_quantity(quantity: int, kind: OrderKind) -> None:
    """Purchases have positive quantities, cancellations negative ones; never 0."""
    if (
        quantity == 0
        or (kind is OrderKind.PURCHASE and quantity < 0)
        or (kind is OrderKind.CANCELLATION and quantity > 0)
    ):
        if kind is OrderKind.CANCELLATION:
            raise ValidationError(
                _("quantity {quantity} is not valid for a cancellation", quantity=quantity), field="quantity"
            )
        raise ValidationError(_("quantity {quantity} is not valid for a purchase", quantity=quantity), field="quantity")


def create_order(
    uow: UnitOfWork,
    customer_id: int | None,
    lines: Sequence[LineInput],
    *,
    number: str | None = None,
    ordered_at: datetime | None = None,
    kind: OrderKind = OrderKind.PURCHASE,
    currency: str = "EUR",
    source: str = "crm",
) -> Order:
    if not lines:
        raise ValidationError(_("an order needs at least one line"))
    if number and uow.session.scalars(sa.select(Order.id).where(Order.number == number)).first():
        raise Conflict(_("order {number} already exists", number=number))
    order = Order(
        number=number or "",
        customer_id=customer_id,
        kind=kind,
        ordered_at=ordered_at or clock.utcnow(),
        currency=currency,
        source=source,
    )
    total = 0
    for line in lines:
        product = uow.session.get(Product, line.product_id)
        if product is None:
            raise NotFound(_("there is no product #{id}", id=line.product_id))
        check_quantity(line.quantity, kind)
        unit = product.price_cents if line.unit_price_cents is None else line.unit_price_cents
        line_total = unit * line.quantity
        total += line_total
        order.lines.append(
            OrderLine(product_id=product.id, quantity=line.quantity, unit_price_cents=unit, line_total_cents=line_total)
        )
    order.total_cents = total
    uow.session.add(order)
    uow.session.flush()
    if not number:
        order.number = f"SO-{order.id:06d}"
    if customer_id is not None:
        refresh_customer_stats(uow, [customer_id])
    return order


def refresh_customer_stats(uow: UnitOfWork, customer_ids: Iterable[int] | None = None) -> None:
    """Recompute lifetime value (purchases minus cancellations), order count and first/last order.

    ``None`` recomputes every customer, in one statement per figure set.
    """
    ids = None if customer_ids is None else sorted(set(customer_ids))
    if ids is not None and not ids:
        return
    purchases = sa.and_(Order.customer_id == Customer.id, Order.kind == OrderKind.PURCHASE)
    values = {
        "lifetime_value_cents": sa.select(sa.func.coalesce(sa.func.sum(Order.total_cents), 0))
        .where(Order.customer_id == Customer.id)
        .scalar_subquery(),
        "order_count": sa.select(sa.func.count(Order.id)).where(purchases).scalar_subquery(),
        "first_order_at": sa.select(sa.func.min(Order.ordered_at)).where(purchases).scalar_subquery(),
        "last_order_at": sa.select(sa.func.max(Order.ordered_at)).where(purchases).scalar_subquery(),
    }
    # Chunked so the IN list stays within every database's parameter limit.
    chunks = [None] if ids is None else [ids[i : i + 500] for i in range(0, len(ids), 500)]
    for chunk in chunks:
        statement = sa.update(Customer).values(**values)
        if chunk is not None:
            statement = statement.where(db.one_of(uow.session, Customer.id, chunk))
        uow.session.execute(statement.execution_options(synchronize_session=False))
    # Objects already loaded in this session must not keep stale figures.
    for obj in uow.session.identity_map.values():
        if isinstance(obj, Customer) and (ids is None or obj.id in ids):
            uow.session.expire(obj, ["lifetime_value_cents", "order_count", "first_order_at", "last_order_at"])


def add_to_customer_stats(uow: UnitOfWork, new_orders: Sequence[NewOrder]) -> None:
    """PostgreSQL: add orders just inserted to their customers' figures, what ``refresh_customer_stats``
    would recompute from all their orders, in one UPDATE from arrays. Recomputing read every order of
    each customer in four subqueries (the larger part of a 10,000-line bulk request's time in the
    database, and when the planner misjudged the orders per customer it compiled the statement with
    JIT, half a second more); adding is also right when two requests add orders to one customer at
    once (each adds to the row as the other left it)."""
    figures: dict[int, list] = {}
    for order in new_orders:
        if order.customer_id is None:
            continue
        total = sum(line.total_cents for line in order.lines)
        entry = figures.setdefault(order.customer_id, [0, 0, None, None])
        entry[0] += total
        if order.kind is OrderKind.PURCHASE:
            at = clock.as_utc(order.ordered_at)
            entry[1] += 1
            entry[2] = at if entry[2] is None or at < entry[2] else entry[2]
            entry[3] = at if entry[3] is None or at > entry[3] else entry[3]
    if not figures:
        return
    ids = sorted(figures)
    uow.session.execute(
        sa.text(
            "UPDATE customers SET lifetime_value_cents = customers.lifetime_value_cents + d.value, "
            "order_count = customers.order_count + d.purchases, "
            # LEAST and GREATEST pass over NULLs: a first purchase, or a request of cancellations only.
            "first_order_at = LEAST(customers.first_order_at, d.first_at), "
            "last_order_at = GREATEST(customers.last_order_at, d.last_at) "
            "FROM unnest(CAST(:id AS integer[]), CAST(:value AS bigint[]), CAST(:purchases AS integer[]), "
            "CAST(:first_at AS timestamptz[]), CAST(:last_at AS timestamptz[])) AS d(id, value, purchases, first_at, last_at) "
            "WHERE customers.id = d.id"
        ),
        {
            "id": _int_array(ids),
            "value": _int_array(figures[i][0] for i in ids),
            "purchases": _int_array(figures[i][1] for i in ids),
            "first_at": [figures[i][2] for i in ids],
            "last_at": [figures[i][3] for i in ids],
        },
    )
    # Objects already loaded in this session must not keep stale figures.
    for obj in uow.session.identity_map.values():
        if isinstance(obj, Customer) and obj.id in figures:
            uow.session.expire(obj, ["lifetime_value_cents", "order_count", "first_order_at", "last_order_at"])


@dataclass(frozen=True)
class NewLine:
    product_id: int
    quantity: int
    unit_price_cents: int
    # Given when it is not simply unit x quantity (a file's sub-cent unit prices, rounded per line).
    line_total_cents: int | None = None

    @property
    def total_cents(self) -> int:
        return self.unit_price_cents * self.quantity if self.line_total_cents is None else self.line_total_cents


@dataclass(frozen=True)
class NewOrder:
    """An order ready to insert as it is (checked by the caller): for imports and bulk requests."""

    number: str
    customer_id: int | None
    kind: OrderKind
    ordered_at: datetime
    currency: str
    lines: Sequence[NewLine]
    country: str | None = None


def insert_many(uow: UnitOfWork, orders: Sequence[NewOrder], *, source: str) -> list[int]:
    """Insert orders and their lines with two multi-row INSERTs per ``BATCH`` orders: no ORM objects
    and no audit entry per row (the caller audits the whole write once, ``audit.record``) and no
    stats refresh (the caller refreshes its customers once). Returns the new ids in input order."""
    session = uow.session
    postgresql = session.get_bind().dialect.name == "postgresql"
    ids: list[int] = []
    for start in range(0, len(orders), BATCH):
        batch = orders[start : start + BATCH]
        batch_ids = _insert_orders_pg(session, batch, source) if postgresql else _insert_orders(session, batch, source)
        line_rows = [
            (order_id, line.product_id, line.quantity, line.unit_price_cents, line.total_cents)
            for order_id, order in zip(batch_ids, batch, strict=True)
            for line in order.lines
        ]
        if line_rows:
            if postgresql:
                _insert_lines_pg(session, line_rows)
            else:
                session.execute(
                    cast(sa.Table, OrderLine.__table__).insert(),
                    [dict(zip(_LINE_COLUMNS, row, strict=True)) for row in line_rows],
                )
        ids.extend(batch_ids)
    return ids


_LINE_COLUMNS = ("order_id", "product_id", "quantity", "unit_price_cents", "line_total_cents")


def _order_row(order: NewOrder, source: str) -> dict[str, object]:
    return {
        "number": order.number,
        "customer_id": order.customer_id,
        "kind": order.kind,
        "ordered_at": order.ordered_at,
        "currency": order.currency,
        "total_cents": sum(line.total_cents for line in order.lines),
        "country": order.country,
        "source": source,
    }


def _insert_orders(session: Session, batch: Sequence[NewOrder], source: str) -> list[int]:
    statement = sa.insert(Order).returning(Order.id, sort_by_parameter_order=True)
    return list(session.execute(statement, [_order_row(order, source) for order in batch]).scalars())


def _int_array(values: Iterable[int | None]) -> str:
    """A PostgreSQL array literal of integers (``{1,2,NULL}``), cast in the statement. psycopg dumps
    a Python list element by element; one ``join`` is several times faster for ten thousand lines."""
    listed = list(values)
    if None not in listed:  # the usual case: no per-element test (about 2x faster)
        return "{" + ",".join(map(str, map(int, cast(list[int], listed)))) + "}"
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in listed) + "}"


def _insert_orders_pg(session: Session, batch: Sequence[NewOrder], source: str) -> list[int]:
    """PostgreSQL: the ids are drawn from the sequence first, then one INSERT … SELECT FROM
    unnest(arrays) writes every order with its id. A multi-row INSERT … RETURNING of 2,000 orders
    is a statement of 16,000 parameters that psycopg converts afresh each time (a quarter of a
    bulk request's time); these two statements are small, and the same every time."""
    ids = list(
        session.scalars(
            sa.text("SELECT nextval(pg_get_serial_sequence('orders', 'id')) FROM generate_series(1, :n)"),
            {"n": len(batch)},
        )
    )
    session.execute(
        sa.text(
            "INSERT INTO orders (id, number, customer_id, kind, ordered_at, currency, total_cents, country, source) "
            "SELECT * FROM unnest(CAST(:id AS integer[]), CAST(:number AS varchar[]), "
            "CAST(:customer_id AS integer[]), CAST(:kind AS varchar[]), CAST(:ordered_at AS timestamptz[]), "
            "CAST(:currency AS varchar[]), CAST(:total_cents AS bigint[]), CAST(:country AS varchar[]), "
            "CAST(:source AS varchar[]))"
        ),
        {
            "id": _int_array(ids),
            "number": [order.number for order in batch],
            "customer_id": _int_array(order.customer_id for order in batch),
            "kind": [order.kind.value for order in batch],
            "ordered_at": [clock.as_utc(order.ordered_at) for order in batch],
            "currency": [order.currency for order in batch],
            "total_cents": _int_array(sum(line.total_cents for line in order.lines) for order in batch),
            "country": [order.country for order in batch],
            "source": [source] * len(batch),
        },
    )
    return ids


def _insert_lines_pg(session: Session, rows: list[tuple[int, int, int, int, int]]) -> None:
    """PostgreSQL: one INSERT … SELECT FROM unnest(arrays) for thousands of lines, where executemany
    sends one INSERT per line (10,000 lines: about 4x faster)."""
    columns = list(zip(*rows, strict=True))
    session.execute(
        sa.text(
            "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents, line_total_cents) "
            "SELECT * FROM unnest(CAST(:order_id AS integer[]), CAST(:product_id AS integer[]), "
            "CAST(:quantity AS integer[]), CAST(:unit_price_cents AS bigint[]), CAST(:line_total_cents AS bigint[]))"
        ),
        {name: _int_array(values) for name, values in zip(_LINE_COLUMNS, columns, strict=True)},
    )


@dataclass(frozen=True)
class LineRequest:
    """A line as another system sends it: the product by id or by SKU; the price defaults to the product's."""

    quantity: int
    product_id: int | None = None
    sku: str | None = None
    unit_price_cents: int | None = None


class LineLike(Protocol):
    """What ``record_bulk`` reads of a line: a ``LineRequest``, or any object with these attributes
    (the API passes its validated body's lines as they are: 10,000 fewer objects to build)."""

    @property
    def quantity(self) -> int: ...
    @property
    def product_id(self) -> int | None: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def unit_price_cents(self) -> int | None: ...


@dataclass(frozen=True)
class OrderRequest:
    number: str
    lines: Sequence[LineLike]
    customer_id: int | None = None
    kind: OrderKind = OrderKind.PURCHASE
    ordered_at: datetime | None = None
    currency: str | None = None


@dataclass
class BulkResult:
    # number -> order id, in request order; ``created`` says which of them this request made.
    ids: dict[str, int] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    lines: int = 0


def record_bulk(uow: UnitOfWork, requests: Sequence[OrderRequest], *, currency: str, source: str = "api") -> BulkResult:
    """Record many orders at once, idempotently by order number: a number already in the CRM is left
    alone (a retried request changes nothing). Everything is checked before anything is written; every
    problem is reported at once, named by its place (``orders[3].lines[0].sku``). One audit entry and one
    ``order.imported`` event for the whole request."""
    total_lines = sum(len(r.lines) for r in requests)
    if total_lines > MAX_BULK_LINES:
        raise ValidationError(
            _(
                "a request carries at most {limit} order lines (this one has {count}): split it",
                limit=MAX_BULK_LINES,
                count=total_lines,
            ),
            field="orders",
        )
    session = uow.session
    errors: dict[str, str] = {}
    seen: dict[str, int] = {}
    for index, request in enumerate(requests):
        if request.number in seen:
            errors[f"orders[{index}].number"] = _(
                "order {number} is also orders[{index}]", number=request.number, index=seen[request.number]
            )
        seen.setdefault(request.number, index)
    numbers = sorted(seen)
    existing: dict[str, int] = {}
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        existing.update(
            session.execute(sa.select(Order.number, Order.id).where(db.one_of(session, Order.number, chunk))).all()
        )
    fresh = [(i, r) for i, r in enumerate(requests) if r.number not in existing]
    wanted_customers = {r.customer_id for _i, r in fresh if r.customer_id is not None}
    known_customers: set[int] = set()
    listed = sorted(wanted_customers)
    for start in range(0, len(listed), 500):
        known_customers.update(
            session.scalars(sa.select(Customer.id).where(db.one_of(session, Customer.id, listed[start : start + 500])))
        )
    skus = {line.sku for _i, r in fresh for line in r.lines if line.sku is not None}
    by_sku = products.ids_by_sku(uow, skus)
    wanted_products = {line.product_id for _i, r in fresh for line in r.lines if line.product_id is not None}
    wanted_products |= set(by_sku.values())
    prices: dict[int, int] = {}
    listed = sorted(wanted_products)
    for start in range(0, len(listed), 500):
        prices.update(
            session.execute(
                sa.select(Product.id, Product.price_cents).where(
                    db.one_of(session, Product.id, listed[start : start + 500])
                )
            ).all()
        )
    now = clock.utcnow()
    new_orders: list[NewOrder] = []
    for index, request in fresh:
        place = f"orders[{index}]"
        if request.customer_id is not None and request.customer_id not in known_customers:
            errors[f"{place}.customer_id"] = _("there is no customer #{id}", id=request.customer_id)
        if not request.lines:
            errors[f"{place}.lines"] = _("an order needs at least one line")
        lines: list[NewLine] = []
        for n, line in enumerate(request.lines):
            at = f"{place}.lines[{n}]"
            if (line.product_id is None) == (line.sku is None):
                errors[at] = _("name the product by product_id or by sku (one of them)")
                continue
            product_id = line.product_id if line.product_id is not None else by_sku.get(line.sku or "")
            if product_id is None:
                errors[f"{at}.sku"] = _("there is no product with the SKU {sku}", sku=line.sku)
                continue
            if product_id not in prices:
                errors[f"{at}.product_id"] = _("there is no product #{id}", id=product_id)
                continue
            try:
                check_quantity(line.quantity, request.kind)
            except ValidationError as exc:
                errors[f"{at}.quantity"] = exc.message
                continue
            unit = prices[product_id] if line.unit_price_cents is None else line.unit_price_cents
            if abs(unit * line.quantity) > MAX_TOTAL_CENTS:
                errors[at] = _("the line's total is over {limit} cents", limit=MAX_TOTAL_CENTS)
                continue
            lines.append(NewLine(product_id, line.quantity, unit))
        if abs(sum(line.total_cents for line in lines)) > MAX_TOTAL_CENTS:
            errors[f"{place}.lines"] = _("the order's total is over {limit} cents", limit=MAX_TOTAL_CENTS)
        new_orders.append(
            NewOrder(
                request.number,
                request.customer_id,
                request.kind,
                request.ordered_at or now,
                (request.currency or currency).upper(),
                lines,
            )
        )
        if len(errors) >= 100:
            break
    if errors:
        first = next(iter(errors))
        if len(errors) > 1:
            message = ngettext(
                "{place}: {problem} (and {n} more problem); nothing was recorded",
                "{place}: {problem} (and {n} more problems); nothing was recorded",
                len(errors) - 1,
                place=first,
                problem=errors[first],
            )
        else:
            message = _("{place}: {problem}; nothing was recorded", place=first, problem=errors[first])
        raise ValidationError(message, field=first, errors=errors)
    new_orders.sort(key=lambda o: (o.ordered_at, o.number))
    ids = insert_many(uow, new_orders, source="api")
    result = BulkResult(lines=sum(len(o.lines) for o in new_orders))
    made = {order.number: order_id for order, order_id in zip(new_orders, ids, strict=True)}
    for request in requests:
        result.ids[request.number] = made.get(request.number) or existing[request.number]
    result.created = set(made)
    if session.get_bind().dialect.name == "postgresql":
        add_to_customer_stats(uow, new_orders)
    else:
        refresh_customer_stats(uow, {o.customer_id for o in new_orders if o.customer_id is not None})
    if new_orders:
        kinds = [o.kind for o in new_orders]
        audit.record(
            uow,
            "import",
            "orders",
            source,
            {"orders": len(new_orders), "order lines": result.lines, "unchanged": len(existing)},
        )
        events.emit(
            uow,
            "order.imported",
            entity_type="order_import",
            entity_id=source[:100],
            payload={
                "source": source,
                "currency": currency,
                "rows": total_lines,
                "orders": kinds.count(OrderKind.PURCHASE),
                "cancellations": kinds.count(OrderKind.CANCELLATION),
                "order_lines": result.lines,
                "customers": 0,
                "products": 0,
                "already_there": len(existing),
                "skipped_rows": 0,
                "first_ordered_at": new_orders[0].ordered_at.isoformat(),
                "last_ordered_at": new_orders[-1].ordered_at.isoformat(),
            },
        )
    return result


def lifetime_values(session: Session, customer_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Customer id -> lifetime value (purchases minus cancellations) per currency, as the orders hold it.

    ``Customer.lifetime_value_cents`` adds every order whatever its currency (the segment filter's
    ``ltv>=`` compares against it); what people read comes from here, one amount per currency."""
    ids = sorted(set(customer_ids))
    found: dict[int, dict[str, int]] = {}
    for start in range(0, len(ids), 500):
        for customer_id, currency, cents in session.execute(
            sa.select(Order.customer_id, Order.currency, sa.func.sum(Order.total_cents))
            .where(Order.customer_id.in_(ids[start : start + 500]))
            .group_by(Order.customer_id, Order.currency)
        ):
            assert customer_id is not None, "matched by customer_id IN (...)"
            found.setdefault(customer_id, {})[currency] = int(cents or 0)
    return found
