"""Mining the order history for products bought together, and recommending from the rules.

``run_mining`` reads each purchase order of the ``window_days`` before its as-of end (now, a day an
admin names, or the newest order's day when the history stopped earlier: crm_core.history) as one
basket of distinct products, mines association rules with ``crm_core.mining``, and stores the run with its rules
(older runs' rules are dropped, the run records stay). ``recommend`` turns the latest rules into
suggestions for one customer: rules whose whole antecedent the customer bought recently (in the
``RECENT`` days before the rules' as-of end) and whose consequent they never bought, ranked by confidence × lift.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa

from crm_core import history, text
from crm_core.clock import as_utc, utcnow
from crm_core.errors import NotFound, ValidationError
from crm_core.i18n import _
from crm_core.models import (
    MinedRule,
    MiningRun,
    Order,
    OrderKind,
    OrderLine,
    Product,
    Recommendation,
    RecommendationStatus,
)
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from crm_core.mining import AssociationRules, EncodedBaskets

# Order lines fetched per database round trip when reading the baskets.
STREAM_CHUNK_ROWS = 50_000

# How far back a purchase counts as "recently bought" for a recommendation.
RECENT = timedelta(days=180)
MAX_PER_CUSTOMER = 3


@dataclass(frozen=True)
class MiningSettings:
    window_days: int = 365
    min_support: float = 0.005
    min_confidence: float = 0.3
    min_lift: float | None = 1.5
    max_len: int | None = 4
    # "local" (crm_core.mining, in this process) or "spark" (crm_core.mining.spark_engine).
    engine: str = "local"
    # SPARK_MASTER; None: Spark's launcher decides (spark-submit's --master, spark-defaults.conf, local[*]).
    spark_master: str | None = None
    # CHATCRM_SPARK_STAGING: where the baskets' Parquet file is written for Spark (None: the temp directory).
    spark_staging: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MiningSettings:
        """From the CHATCRM_MINING_* settings (the process settings' mapping, read by bot.settings)."""

        def number(name: str, default, kind=float):
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None

        return cls(
            window_days=number("CHATCRM_MINING_WINDOW_DAYS", cls.window_days, int),
            min_support=number("CHATCRM_MINING_MIN_SUPPORT", cls.min_support),
            min_confidence=number("CHATCRM_MINING_MIN_CONFIDENCE", cls.min_confidence),
            min_lift=number("CHATCRM_MINING_MIN_LIFT", cls.min_lift),
            max_len=number("CHATCRM_MINING_MAX_LEN", cls.max_len, int),
            engine=mining_engine(env.get("CHATCRM_MINING_ENGINE") or cls.engine, "CHATCRM_MINING_ENGINE"),
            spark_master=env.get("SPARK_MASTER") or None,
            spark_staging=env.get("CHATCRM_SPARK_STAGING") or None,
        )


ENGINES = ("local", "spark")


def mining_engine(raw: str, name: str) -> str:
    """``raw`` as an engine name, or a ValueError naming the setting and the choices."""
    engine = raw.strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"{name}={raw!r}: the mining engine is one of {', '.join(ENGINES)}")
    return engine


def basket_lines(since: datetime, until: datetime | None = None) -> sa.Select:
    """(order id, product id) of the purchase lines since ``since`` (and before ``until``), by order id."""
    statement = (
        sa.select(OrderLine.order_id, OrderLine.product_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.kind == OrderKind.PURCHASE, Order.ordered_at >= since, OrderLine.quantity > 0)
        .order_by(OrderLine.order_id)
    )
    if until is not None:
        statement = statement.where(Order.ordered_at < until)
    return statement


def baskets_since(
    uow: UnitOfWork, since: datetime, until: datetime | None = None, *, chunk_rows: int = STREAM_CHUNK_ROWS
) -> EncodedBaskets:
    """One basket of distinct product ids per purchase order placed since ``since`` (and before ``until``).

    The order lines are streamed (a server-side cursor on PostgreSQL, batches on SQLite),
    ``chunk_rows`` at a time, and each batch becomes one integer array: a year of history
    never exists as Python objects. ``len()`` of the result is the number of baskets.
    """
    # numpy and the miner are imported here and in run_mining, not with the module: the
    # recommendations handler imports this module in every process that builds the app (chatcrm
    # worker, console, import …), and they cost each start about a tenth of a second.
    import numpy as np

    from crm_core.mining.baskets import encode_item_rows

    statement = basket_lines(since, until)
    result = uow.session.execute(statement.execution_options(yield_per=chunk_rows))
    try:
        return encode_item_rows(
            np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows)) for rows in result.partitions()
        )
    finally:
        result.close()


def run_mining(
    uow: UnitOfWork,
    settings: MiningSettings = MiningSettings(),
    *,
    trigger: str = "nightly",
    now: datetime | None = None,
    as_of: date | None = None,
) -> MiningRun:
    """Mine the window ending at ``as_of`` (a day, inclusive), or now, or the newest order's day."""
    started = time.perf_counter()
    now = now or utcnow()
    end = history.resolve(uow.session, settings.window_days, now, as_of)
    run = MiningRun(
        started_at=now,
        window_days=settings.window_days,
        min_support=settings.min_support,
        min_confidence=settings.min_confidence,
        min_lift=settings.min_lift,
        max_len=settings.max_len,
        trigger=trigger,
        as_of=end.end,
        as_of_source=end.source,
    )
    uow.session.add(run)
    uow.session.flush()
    rules = []
    model: AssociationRules | None
    if settings.engine == "spark":
        from crm_core.services.spark_mining import mine_on_spark

        run.n_baskets, model = mine_on_spark(uow, settings, end.start, end.end)
    else:
        from crm_core.mining import AssociationRules

        baskets = baskets_since(uow, end.start, end.end)
        run.n_baskets = len(baskets)
        model = (
            AssociationRules(
                settings.min_support, settings.min_confidence, min_lift=settings.min_lift, max_len=settings.max_len
            ).fit(baskets)
            if baskets
            else None
        )
    if model is not None:
        rules = model.rules_
        run.n_itemsets = len(model.itemsets_)
    run.n_rules = len(rules)
    # Only the latest rule set is used; keep the table small.
    uow.session.execute(sa.delete(MinedRule).where(MinedRule.run_id != run.id))
    if rules:
        uow.session.execute(
            sa.insert(MinedRule),
            [
                {
                    "run_id": run.id,
                    # The miner is generic over hashable items; these baskets hold product ids.
                    "antecedent": sorted(int(cast(int, i)) for i in r.antecedent),
                    "consequent_id": int(cast(int, r.consequent)),
                    "support": r.support,
                    "confidence": r.confidence,
                    "lift": r.lift,
                    "count": r.count,
                }
                for r in rules
            ],
        )
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    uow.session.flush()
    return run


def latest_run(uow: UnitOfWork) -> MiningRun | None:
    return uow.session.scalars(sa.select(MiningRun).order_by(MiningRun.id.desc()).limit(1)).first()


def run_window(run: MiningRun) -> str:
    """Which orders a run mined, in words: ``the last 365 days`` or ``the 365 days to 2011-12-09, …``."""
    return history.describe(run.as_of, run.as_of_source, run.window_days)


def rules_as_of(run: MiningRun | None, now: datetime) -> datetime:
    """The "now" recommendations from a run's rules take: the run's as-of end when it looked at an older history."""
    if run is None or run.as_of is None or run.as_of_source == history.NOW:
        return now
    return as_utc(run.as_of)


@dataclass(frozen=True)
class Suggestion:
    product_id: int
    because: tuple[int, ...]
    confidence: float
    lift: float

    @property
    def score(self) -> float:
        return self.confidence * self.lift


def latest_rules(uow: UnitOfWork) -> list[MinedRule]:
    run = latest_run(uow)
    if run is None:
        return []
    return list(uow.session.scalars(sa.select(MinedRule).where(MinedRule.run_id == run.id)))


def purchases(uow: UnitOfWork, customer_ids: list[int] | None, since: datetime) -> dict[int, tuple[set[int], set[int]]]:
    """customer id -> (products bought since ``since``, products ever bought)."""
    statement = (
        sa.select(Order.customer_id, OrderLine.product_id, sa.func.max(Order.ordered_at))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.kind == OrderKind.PURCHASE, Order.customer_id.is_not(None))
        .group_by(Order.customer_id, OrderLine.product_id)
    )
    if customer_ids is not None:
        statement = statement.where(Order.customer_id.in_(customer_ids))
    result: dict[int, tuple[set[int], set[int]]] = {}
    for customer_id, product_id, last in uow.session.execute(statement):
        assert customer_id is not None, "the query keeps only orders with a customer"
        recent, ever = result.setdefault(customer_id, (set(), set()))
        ever.add(product_id)
        if _aware(last) >= since:
            recent.add(product_id)
    return result


def _aware(value) -> datetime:
    # SQLite hands aggregated timestamps back as text or naive UTC.
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def suggestions_for(
    rules: list[MinedRule],
    recent: set[int],
    ever: set[int],
    excluded: Set[int] = frozenset(),
    limit: int = MAX_PER_CUSTOMER,
) -> list[Suggestion]:
    best: dict[int, Suggestion] = {}
    for rule in rules:
        product = rule.consequent_id
        if product in ever or product in excluded or not set(rule.antecedent) <= recent:
            continue
        suggestion = Suggestion(product, tuple(rule.antecedent), rule.confidence, rule.lift)
        # Best score wins; on a tie the more specific reason (longer antecedent), then the lower ids.
        key = (suggestion.score, len(suggestion.because), tuple(-i for i in suggestion.because))
        current = best.get(product)
        if current is None or key > (current.score, len(current.because), tuple(-i for i in current.because)):
            best[product] = suggestion
    return sorted(best.values(), key=lambda s: (-s.score, s.product_id))[:limit]


def not_relevant(uow: UnitOfWork, customer_ids: list[int] | None = None) -> dict[int, set[int]]:
    """customer id -> products a rep marked "not relevant" for them (never suggested again)."""
    statement = sa.select(Recommendation.customer_id, Recommendation.product_id).where(
        Recommendation.status == RecommendationStatus.NOT_RELEVANT
    )
    if customer_ids is not None:
        statement = statement.where(Recommendation.customer_id.in_(customer_ids))
    result: dict[int, set[int]] = {}
    for customer_id, product_id in uow.session.execute(statement):
        result.setdefault(customer_id, set()).add(product_id)
    return result


def recommend(uow: UnitOfWork, customer_id: int, now: datetime | None = None) -> list[Suggestion]:
    # "Recently bought" is measured from where the rules' history ends (a 2011 history: 2011).
    now = rules_as_of(latest_run(uow), now or utcnow())
    recent, ever = purchases(uow, [customer_id], now - RECENT).get(customer_id, (set(), set()))
    excluded = not_relevant(uow, [customer_id]).get(customer_id, set())
    return suggestions_for(latest_rules(uow), recent, ever, excluded)


def product_names(uow: UnitOfWork, ids) -> dict[int, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(uow.session.execute(sa.select(Product.id, Product.name).where(Product.id.in_(ids))).all())


def rules_for_product(uow: UnitOfWork, product_id: int | None, limit: int = 10) -> list[MinedRule]:
    rules = latest_rules(uow)
    if product_id is not None:
        rules = [r for r in rules if r.consequent_id == product_id or product_id in r.antecedent]
    return sorted(rules, key=lambda r: (-r.confidence * r.lift, -r.count, r.id))[:limit]


def find_product(uow: UnitOfWork, reference: str) -> Product:
    """A product by SKU (exact, any case) or by a unique part of its name."""
    ref = reference.strip()
    session = uow.session
    product = session.scalars(sa.select(Product).where(sa.func.lower(Product.sku) == ref.lower())).first()
    if product:
        return product
    pattern = "%" + text.like_escape(ref.lower()) + "%"
    found = session.scalars(
        sa.select(Product)
        .where(sa.func.lower(Product.name).like(pattern, escape="\\"))
        .order_by(sa.func.length(Product.name), Product.id)
        .limit(6)
    ).all()
    if len(found) == 1 or (found and found[0].name.lower() == ref.lower()):
        return found[0]
    if not found:
        raise NotFound(_("no product matches {query}", query=repr(ref)))
    names = ", ".join(f"{p.name} ({p.sku})" for p in found[:5])
    raise ValidationError(_("{query} matches several products: {names}. Use the SKU.", query=repr(ref), names=names))


def record_feedback(uow: UnitOfWork, customer_id: int, product_id: int, status: RecommendationStatus) -> Recommendation:
    """A rep's answer to a suggestion: pitched, or not relevant (never suggested again)."""
    session = uow.session
    recommendation = session.scalars(
        sa.select(Recommendation)
        .where(Recommendation.customer_id == customer_id, Recommendation.product_id == product_id)
        .order_by(Recommendation.posted_at.desc(), Recommendation.id.desc())
        .limit(1)
    ).first()
    if recommendation is None:
        suggestion = next((s for s in recommend(uow, customer_id) if s.product_id == product_id), None)
        recommendation = Recommendation(
            customer_id=customer_id,
            product_id=product_id,
            because=list(suggestion.because) if suggestion else [],
            confidence=suggestion.confidence if suggestion else 0.0,
            lift=suggestion.lift if suggestion else 0.0,
            owner_id=uow.actor.user_id,
        )
        session.add(recommendation)
    recommendation.status = status
    recommendation.acted_at = utcnow()
    recommendation.acted_by_id = uow.actor.user_id
    session.flush()
    return recommendation
