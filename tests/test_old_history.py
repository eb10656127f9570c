"""A history that stopped years ago (a migration of 2010–2011 orders): mining, recommendations,
churn and RFM run as of its newest order, or as of a day an admin names."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from bot.settings import Settings
from crm_core.importing.retail_orders import import_retail_orders
from crm_core.models import CustomerScore, MiningRun, ModelRun, Order, OrderKind, OrderLine, Product, Role
from crm_core.services import customers, market_basket, orders
from tests.shared_data import shared_file
from tests.support import TEST_SECRET_KEY

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url):
    # The sample's 91 purchases are few: an itemset in 5 of them is frequent (788 rules).
    return Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, extra={"CHATCRM_MINING_MIN_SUPPORT": "0.05"})


@pytest.fixture
def retail(app):
    with app.uow() as uow:
        import_retail_orders(uow, shared_file("online_retail_sample.csv"), currency="GBP")


@time_machine.travel(NOW, tick=False)
def test_mine_and_recommend_as_of_the_newest_order(app, chat, retail):
    admin = chat.user("Ada", Role.ADMIN)
    with app.uow() as uow:
        purchases = uow.session.scalar(
            sa.select(sa.func.count()).select_from(Order).where(Order.kind == OrderKind.PURCHASE)
        )
    mined = chat.say(admin, "/mine").reply
    # The sample is one day, 2010-12-01: nothing in the last 365 days, so the window ends there.
    assert mined.text == (
        f"Mined {purchases} orders of the 365 days to 2010-12-01, the newest order's day "
        "(no orders in the last 365 days)."
    )
    with app.uow() as uow:
        run = uow.session.scalars(sa.select(MiningRun)).one()
        assert run.as_of == datetime(2010, 12, 2, tzinfo=UTC) and run.as_of_source == "newest order"
        assert run.n_baskets == purchases and run.n_rules > 0
        # A customer of 2010 gets suggestions: "recently bought" counts from the rules' as-of end.
        rules = market_basket.latest_rules(uow)
        since = market_basket.rules_as_of(run, NOW) - market_basket.RECENT
        fits = sorted(
            c
            for c, (recent, ever) in market_basket.purchases(uow, None, since).items()
            if market_basket.suggestions_for(rules, recent, ever)
        )
    assert fits
    reply = chat.say(admin, f"/recommend #{fits[0]}").reply
    assert reply.sections[0].items and reply.sections[0].items[0].detail.startswith("because they bought ")
    assert "of the 365 days to 2010-12-01" in reply.footer

    # An explicit day and window: the day before the sample has no orders in its week.
    before = chat.say(admin, "/mine as_of=2010-11-30 window=7d").reply
    assert before.text == "Mined 0 orders of the 7 days to 2010-11-30."
    assert chat.say(admin, "/mine as_of=2010-12-01 window=1d").reply.text == (
        f"Mined {purchases} orders of the 1 day to 2010-12-01."
    )
    bad = chat.say(admin, "/mine as_of=yesterday").reply
    assert bad.text == "'yesterday' is not a day: write it like 2011-12-09."
    assert chat.say(admin, "/mine window=forever").reply.text.startswith("'forever' is not a window")


def _old_history(app) -> None:
    """60 customers ordering through 2011 every 2–5 weeks; about half stop for good at some point."""
    rng = random.Random(11)
    with app.uow() as uow:
        product = Product(sku="TEA", name="Tea", price_cents=450)
        uow.session.add(product)
        uow.session.flush()
        ids = []
        for i in range(60):
            customer = customers.create_customer(uow, f"Shop {i}")
            ids.append(customer.id)
            day = datetime(2011, 1, 3, 10, tzinfo=UTC) + timedelta(days=rng.randint(0, 40))
            stop = datetime(2011, 12, 9, 12, tzinfo=UTC) - (
                timedelta(days=rng.randint(0, 300)) if i % 2 else timedelta(0)
            )
            while day <= stop:
                quantity = rng.randint(1, 5)
                line = OrderLine(product_id=product.id, quantity=quantity, unit_price_cents=450)
                line.line_total_cents = 450 * quantity
                uow.session.add(
                    Order(
                        number=f"T{i}-{day:%m%d}",
                        customer_id=customer.id,
                        ordered_at=day,
                        currency="GBP",
                        total_cents=450 * quantity,
                        lines=[line],
                    )
                )
                day += timedelta(days=rng.randint(14, 35))
        # Written in bulk, like an import; the customers' figures are refreshed once.
        uow.session.flush()
        orders.refresh_customer_stats(uow, ids)


@time_machine.travel(NOW, tick=False)
def test_churn_trains_and_scores_as_of_the_newest_order(app, chat):
    # The 2,000-row sample is a single day: no 90-day outcome to learn from, so the history is generated.
    _old_history(app)
    admin = chat.user("Ada", Role.ADMIN)
    reply = chat.say(admin, "/model train").reply
    with app.uow() as uow:
        run = uow.session.scalars(sa.select(ModelRun)).one()
        newest = uow.session.scalar(sa.select(sa.func.max(Order.ordered_at)))
        scores = uow.session.scalars(sa.select(CustomerScore)).all()
    assert run.as_of_source == "newest order" and run.as_of.date() == newest.date() + timedelta(days=1)
    assert run.test_cutoff == run.as_of - timedelta(days=90)
    assert run.published and run.roc_auc >= 0.6, run.note
    assert run.note.startswith(f"As of {newest.date()} (the newest order's day; no orders in the last 90 days):")
    assert reply.text.endswith(run.note)
    assert {f.label: f.value for f in reply.fields}["History as of"] == f"{newest.date()} (the newest order's day)"
    # Scored as of 2011: those still ordering then are not all "hibernating" (as they would be from 2026).
    assert len(scores) == 60 and all(s.churn_risk is not None for s in scores)
    assert {s.rfm_segment for s in scores} - {"hibernating"}

    # An explicit day: the holdout ends there.
    again = chat.say(admin, "/model train as_of=2011-10-31").reply
    with app.uow() as uow:
        latest = uow.session.scalars(sa.select(ModelRun).order_by(ModelRun.id.desc())).first()
    assert latest.as_of == datetime(2011, 11, 1, tzinfo=UTC) and latest.as_of_source == "given"
    assert again.text.startswith("Retrained in ") and "As of 2011-10-31 (the day asked for)" in again.text


@time_machine.travel(NOW, tick=False)
def test_a_recent_history_still_ends_now(app):
    with app.uow() as uow:
        product = Product(sku="X", name="Thing", price_cents=100)
        uow.session.add(product)
        uow.session.flush()
        customer = customers.create_customer(uow, "Recent")
        orders.create_order(uow, customer.id, [orders.LineInput(product.id, 1)], ordered_at=NOW - timedelta(days=3))
        run = market_basket.run_mining(uow)
        assert run.as_of == NOW and run.as_of_source == "now"
        assert market_basket.run_window(run) == "the last 365 days"


def test_chatcrm_mine_and_model_train_as_of(tmp_path, monkeypatch, capsys):
    # In-process (bot.cli.main), for speed; tests/test_cli.py runs chatcrm as a real process.
    from bot.cli import main

    for name in [n for n in os.environ if n.startswith(("CHATCRM_", "SLACK_", "TELEGRAM_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["import", "orders", str(shared_file("online_retail_sample.csv"))]) == 0
    capsys.readouterr()
    assert main(["mine", "--window", "30d", "--min-support", "0.05"]) == 0
    assert capsys.readouterr().out.startswith(
        "Mining run #1: mined 91 orders of the 30 days to 2010-12-01, the newest order's day "
        "(no orders in the last 30 days): "
    )
    assert main(["mine", "--as-of", "2010-11-30"]) == 0
    assert capsys.readouterr().out.startswith("Mining run #2: mined 0 orders of the 365 days to 2010-11-30: ")
    assert main(["mine", "--as-of", "soon"]) == 1
    assert capsys.readouterr().err.strip() == "chatcrm: 'soon' is not a day: write it like 2011-12-09"
    # One day of history has no 90-day outcome to learn from: recorded, not trained, and it says so.
    assert main(["model", "train", "--as-of", "2010-12-01"]) == 0
    assert capsys.readouterr().out.startswith(
        "Churn model run #1 (not trained, no AUC): As of 2010-12-01 (the day asked for): not enough history"
    )
