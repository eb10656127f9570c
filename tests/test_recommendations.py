"""Mining the order history and recommending from it: /mine, /rules, /recommend and feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from bot.messages import Tone
from crm_core.models import Interaction, MinedRule, MiningRun, Product, Recommendation, RecommendationStatus, Role, User
from crm_core.services import customers, market_basket, orders

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture
def shop(app):
    """Printer buyers buy toner and paper; Acme bought toner and paper recently but never a printer."""
    with app.uow() as uow:
        catalogue = {}
        for sku, name in [("PRN", "Printer"), ("TON", "Toner"), ("PAP", "Paper"), ("MUG", "Mug")]:
            product = Product(sku=sku, name=name, price_cents=1000)
            uow.session.add(product)
            catalogue[sku] = product
        uow.session.flush()
        ids = {sku: p.id for sku, p in catalogue.items()}
        buyers = [customers.create_customer(uow, f"Buyer {i}").id for i in range(40)]
        for i, customer_id in enumerate(buyers):
            skus = ["PRN", "TON", "PAP"] if i < 16 else ["MUG"]
            orders.create_order(
                uow,
                customer_id,
                [orders.LineInput(ids[s], 1) for s in skus],
                ordered_at=NOW - timedelta(days=10 + i % 30),
            )
        acme = customers.create_customer(uow, "Acme Corp").id
        orders.create_order(
            uow,
            acme,
            [orders.LineInput(ids["TON"], 2), orders.LineInput(ids["PAP"], 1)],
            ordered_at=NOW - timedelta(days=5),
        )
        # An old order outside the mining window must not count.
        orders.create_order(
            uow,
            buyers[-1],
            [orders.LineInput(ids["MUG"], 1), orders.LineInput(ids["PRN"], 1)],
            ordered_at=NOW - timedelta(days=800),
        )
    return {"ids": ids, "acme": acme}


@time_machine.travel(NOW, tick=False)
def test_mine_rules_and_recommend_with_reason(chat, app, shop):
    admin = chat.user("Ada", Role.ADMIN)
    mined = chat.say(admin, "/mine").reply
    fields = {f.label: f.value for f in mined.fields}
    assert fields["Orders (baskets)"] == "41" and int(fields["Rules"]) > 0
    with app.uow() as uow:
        run = uow.session.scalars(sa.select(MiningRun)).one()
        rules = uow.session.scalars(sa.select(MinedRule)).all()
    printer = shop["ids"]["PRN"]
    rule = next(r for r in rules if r.consequent_id == printer and len(r.antecedent) == 2)
    # Of 41 baskets in the window, 17 hold toner and paper (16 buyers and Acme), 16 a printer too.
    assert rule.count == 16 and rule.confidence == pytest.approx(16 / 17)
    assert rule.lift == pytest.approx((16 / 17) / (16 / 41))
    assert run.n_baskets == 41 and run.n_rules == len(rules)

    reply = chat.say(admin, "/recommend acme").reply
    (item,) = reply.sections[0].items
    assert item.text == "Printer"
    assert item.detail.startswith("because they bought Toner and Paper · confidence 0.94, lift 2.4")
    assert item.button.command == f"/recommend pitched {shop['acme']} {printer}"
    assert chat.say(admin, "/rules PRN").reply.title == "Rules involving Printer"


@time_machine.travel(NOW, tick=False)
def test_pitched_logs_an_interaction_and_not_relevant_suppresses(chat, app, shop):
    rep = chat.user("Rita", Role.SALES)
    admin = chat.user("Ada", Role.ADMIN)
    chat.say(admin, "/mine")
    printer = shop["ids"]["PRN"]
    assert (
        chat.say(rep, f"/recommend pitched {shop['acme']} {printer}", from_button=True).reply.text
        == "Logged: Printer pitched to Acme Corp."
    )
    with app.uow() as uow:
        note = uow.session.scalars(sa.select(Interaction).where(Interaction.customer_id == shop["acme"])).one()
        assert note.text == "Pitched Printer (recommended)"
    assert chat.say(rep, f"/recommend dismiss {shop['acme']} {printer}").reply.tone is Tone.SUCCESS
    with app.uow() as uow:
        rec = uow.session.scalars(sa.select(Recommendation)).one()
        assert rec.status is RecommendationStatus.NOT_RELEVANT
    empty = chat.say(rep, "/recommend acme").reply
    assert empty.sections[0].items == () and empty.sections[0].empty.startswith("Nothing to suggest")
    assert chat.say(rep, f"/recommend dismiss {shop['acme']} 9999").reply.text == "There is no product #9999."


def test_recommend_before_any_mining_and_viewer_cannot_mine(chat, app, shop):
    viewer = chat.user("Vic", Role.VIEWER)
    assert chat.say(viewer, "/recommend acme").reply.text.startswith("No purchase patterns have been mined yet")
    assert chat.say(viewer, "/mine").reply.text == "Your role (viewer) can't use /mine. Ask an admin if you need it."
    assert chat.say(viewer, "/rules nothing-like-this").reply.text.startswith("No purchase patterns")


def test_mining_settings_from_env():
    settings = market_basket.MiningSettings.from_env(
        {"CHATCRM_MINING_MIN_SUPPORT": "0.01", "CHATCRM_MINING_WINDOW_DAYS": "90"}
    )
    assert settings.min_support == 0.01 and settings.window_days == 90 and settings.min_confidence == 0.3
    with pytest.raises(ValueError, match="CHATCRM_MINING_MIN_LIFT='x' is not a number"):
        market_basket.MiningSettings.from_env({"CHATCRM_MINING_MIN_LIFT": "x"})


def test_mining_engine_settings():
    assert market_basket.MiningSettings.from_env({}).engine == "local"
    spark = market_basket.MiningSettings.from_env(
        {"CHATCRM_MINING_ENGINE": "Spark", "SPARK_MASTER": "spark://head:7077", "CHATCRM_SPARK_STAGING": "/shared/tmp"}
    )
    assert (spark.engine, spark.spark_master, spark.spark_staging) == ("spark", "spark://head:7077", "/shared/tmp")
    with pytest.raises(ValueError, match="CHATCRM_MINING_ENGINE='flink': the mining engine is one of local, spark"):
        market_basket.MiningSettings.from_env({"CHATCRM_MINING_ENGINE": "flink"})


@time_machine.travel(NOW, tick=False)
def test_spark_engine_without_pyspark_says_how_to_install_it_and_records_nothing(app, shop, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the spark extra were not installed
    settings = market_basket.MiningSettings(engine="spark")
    with pytest.raises(ImportError, match=r"needs pyspark, which is not installed: pip install 'chatcrm\[spark\]'"):
        with app.uow() as uow:
            market_basket.run_mining(uow, settings)
    with app.uow() as uow:
        assert uow.session.scalars(sa.select(MiningRun)).all() == []


def _nightly(app, when):
    from crm_core.scheduling import JobRun
    from crm_core.services.recommendation_digest import nightly_task

    with time_machine.travel(when, tick=False):
        nightly_task(JobRun("mining:nightly", when, {}, app.session_factory, {}))


def _outbox(app):
    from crm_core.models import OutboxMessage

    with app.uow() as uow:
        return uow.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "recommendation").order_by(OutboxMessage.id)
        ).all()


def test_nightly_job_posts_each_rep_once_and_not_again_within_30_days(chat, app, shop):
    rep = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        rita = uow.session.scalars(sa.select(User).where(User.name == "Rita Rep")).one()
        customers.update_customer(uow, shop["acme"], {"owner": "Rita Rep"})
    _nightly(app, NOW)
    (message,) = _outbox(app)
    assert (message.platform, message.conversation, message.user_id) == ("console", "rita.rep", rita.id)
    text = message.payload["formatted_text"]
    assert (
        "1. Acme Corp bought Toner and Paper; customers who buy Toner and Paper also buy Printer "
        "(confidence 0.94, lift 2.4): suggest Printer."
    ) in text
    assert [b["command"] for b in message.payload["buttons"]] == [
        f"/recommend pitched {shop['acme']} {shop['ids']['PRN']}",
        f"/recommend dismiss {shop['acme']} {shop['ids']['PRN']}",
    ]
    with app.uow() as uow:
        run = uow.session.scalars(sa.select(MiningRun)).one()
        assert run.n_recommendations == 1 and run.trigger == "nightly"
    # The next night: nothing new to say within 30 days.
    _nightly(app, NOW + timedelta(days=1))
    assert len(_outbox(app)) == 1
    # A month later it comes back, unless the rep said it is not relevant.
    _nightly(app, NOW + timedelta(days=31))
    assert len(_outbox(app)) == 2
    chat.say(rep, f"/recommend dismiss {shop['acme']} {shop['ids']['PRN']}", from_button=True)
    _nightly(app, NOW + timedelta(days=62))
    assert len(_outbox(app)) == 2


def test_nightly_job_skips_customers_without_owner_and_reps_without_chat(app, shop):
    _nightly(app, NOW)
    assert _outbox(app) == []
    with app.uow() as uow:
        assert uow.session.scalars(sa.select(MiningRun)).one().n_rules > 0


def test_baskets_are_streamed_in_chunks_into_the_same_baskets(app, shop):
    # Three order lines per round trip: orders straddle the chunks, and each stays one basket.
    ids = shop["ids"]
    since = NOW - timedelta(days=365)
    with app.uow() as uow:
        streamed = market_basket.baskets_since(uow, since, NOW, chunk_rows=3)
        whole = market_basket.baskets_since(uow, since, NOW)
        empty = market_basket.baskets_since(uow, NOW, NOW + timedelta(days=1))
    assert len(streamed) == 41 and len(empty) == 0 and not empty
    assert streamed.labels == whole.labels == tuple(sorted(ids.values()))
    assert streamed.indptr.tolist() == whole.indptr.tolist() and streamed.codes.tolist() == whole.codes.tolist()
    baskets = [
        sorted(streamed.labels[c] for c in streamed.codes[lo:hi])
        for lo, hi in zip(streamed.indptr[:-1], streamed.indptr[1:])
    ]
    assert baskets.count(sorted([ids["PRN"], ids["TON"], ids["PAP"]])) == 16
    assert baskets.count([ids["MUG"]]) == 24 and baskets.count(sorted([ids["TON"], ids["PAP"]])) == 1
