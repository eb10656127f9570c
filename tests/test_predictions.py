"""Churn model and RFM segments: honest evaluation on the demo data, refusal below AUC 0.6."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
import time_machine

from crm_core import demo
from crm_core.models import CustomerScore, ModelRun, Product, Role
from crm_core.predictions import rfm
from crm_core.predictions.scores import refresh_scores
from crm_core.services import customers, orders

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_demo_model_reports_auc_and_calibration_and_scores_customers(app, chat):
    with app.uow(demo.DEMO_ACTOR) as uow:
        demo.seed(uow, customers=300)
    with app.uow() as uow:
        run = refresh_scores(uow)
    assert run.published and run.roc_auc >= 0.6
    assert run.test_cutoff == NOW - timedelta(days=90) and run.train_cutoff == NOW - timedelta(days=180)
    assert set(run.metrics["candidates"]) == {"logistic regression", "gradient-boosted trees"}
    assert run.algorithm == max(run.metrics["candidates"], key=run.metrics["candidates"].get)
    assert sum(n for _p, _o, n in run.metrics["calibration"]) == run.test_size
    with app.uow() as uow:
        scores = uow.session.scalars(sa.select(CustomerScore)).all()
    assert len(scores) == 300 and all(0 <= s.churn_risk <= 1 for s in scores)
    admin = chat.user("Ada", Role.ADMIN)
    viewer = chat.user("Vic", Role.VIEWER)
    card = chat.say(admin, "/customer acme").reply
    fields = {f.label: f.value for f in card.fields}
    assert fields["Churn risk"].endswith(("(low)", "(medium)", "(high)"))
    assert f"ROC AUC {run.roc_auc:.2f}" in card.footer
    viewer_card = chat.say(viewer, "/customer acme").reply
    assert "Churn risk" in {f.label for f in viewer_card.fields} and "ROC AUC" not in viewer_card.footer
    model = chat.say(admin, "/model").reply
    assert {f.label: f.value for f in model.fields}["ROC AUC (holdout)"] == f"{run.roc_auc:.3f}"
    assert model.text == run.note == f"holdout ROC AUC {run.roc_auc:.3f} ≥ 0.6: published; scored 300 customers"
    chat.say(admin, "/lang zh")
    assert "已发布" in chat.say(admin, "/model").reply.text
    assert chat.say(viewer, "/model").reply.text == "Your role (viewer) can't use /model. Ask an admin if you need it."


@time_machine.travel(NOW, tick=False)
def test_a_model_without_signal_is_not_published_and_keeps_old_scores(app):
    # Customers order at random, whatever they did before: nothing to learn.
    rng = random.Random(5)
    with app.uow() as uow:
        product = Product(sku="X", name="Thing", price_cents=1000)
        uow.session.add(product)
        uow.session.flush()
        for i in range(120):
            customer = customers.create_customer(uow, f"Customer {i}")
            for _ in range(rng.randint(1, 6)):
                orders.create_order(
                    uow,
                    customer.id,
                    [orders.LineInput(product.id, 1)],
                    ordered_at=NOW - timedelta(days=rng.randint(1, 400)),
                )
    with app.uow() as uow:
        run = refresh_scores(uow)
        assert run.roc_auc is not None
        if run.roc_auc >= 0.6:
            pytest.fail(f"random behaviour produced AUC {run.roc_auc}")
        assert not run.published and "not published" in run.note
        assert all(s.churn_risk is None for s in uow.session.scalars(sa.select(CustomerScore)))
        assert all(s.rfm_segment for s in uow.session.scalars(sa.select(CustomerScore)))


@time_machine.travel(NOW, tick=False)
def test_too_little_history_is_recorded_not_trained(app, chat):
    with app.uow() as uow:
        run = refresh_scores(uow)
        assert not run.published and run.roc_auc is None and run.note.startswith("not enough history")
    # The nightly run writes in the company's language; a reader in another one reads it in theirs.
    reader = chat.user("Li", Role.ADMIN)
    chat.say(reader, "/lang zh")
    said = chat.say(reader, "/model").reply.text
    assert said.startswith("历史数据不足") and "2026年5月28日" in said and "not enough" not in said
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(ModelRun)) == 1


def test_rfm_quintiles_and_segments():
    assert rfm.quintile_scores(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert rfm.quintile_scores(np.array([5.0, 5.0, 5.0])).tolist() == [4, 4, 4]
    assert rfm.quintile_scores(np.array([10, 1]), higher_is_better=False).tolist() == [3, 5]
    assert rfm.segment(5, 5, 5) == "champions" and rfm.segment(1, 1, 1) == "hibernating"
    assert rfm.segment(1, 4, 5) == "loyal" and rfm.segment(2, 3, 2) == "at risk"
