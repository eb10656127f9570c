"""The nightly job: a quote with no order a week later reminds the rep who gave it, once; a quote
followed by an order, or not yet a week old, reminds nobody. The job is run through the registry by
its stable name, as the scheduler runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import shop
import sqlalchemy as sa
import time_machine

from crm_core.models import OutboxMessage
from crm_core.scheduling import Once, run_due, schedule

QUOTED_AT = datetime(2026, 6, 1, 10, tzinfo=UTC)


def reminders(app) -> list[OutboxMessage]:
    with app.uow() as uow:
        query = sa.select(OutboxMessage).where(OutboxMessage.idempotency_key.like("example:quote-followup:%"))
        return list(uow.session.scalars(query))


def run_job(app, when: datetime, job_id: str) -> None:
    with time_machine.travel(when, tick=False):
        with app.uow() as uow:
            schedule(uow, job_id, "example.quote_followups", Once(when), args={"days": 7})
        [outcome] = run_due(app.session_factory, tasks=app.plugins.tasks)
        assert outcome.status == "ok", outcome.error


def test_a_stale_quote_reminds_its_rep_once(fake_chat, chatcrm_app):
    assert "example.quote_followups" in chatcrm_app.plugins.jobs
    sales = fake_chat.user("Sam Sales", "sales")
    acme = shop.customer(chatcrm_app, "Acme")
    globex = shop.customer(chatcrm_app, "Globex")
    widget = shop.product(chatcrm_app, "WID-1", "Widget", 1250)
    with time_machine.travel(QUOTED_AT, tick=False):
        fake_chat.say(sales, "/quote Acme WID-1 4")
        fake_chat.say(sales, "/quote Globex WID-1 2")
    # Globex ordered after the quote: no reminder for it.
    with time_machine.travel(QUOTED_AT + timedelta(days=2), tick=False):
        shop.order(chatcrm_app, globex, widget, 1250, days_ago=0)

    run_job(chatcrm_app, QUOTED_AT + timedelta(days=6, hours=23), "early")
    assert reminders(chatcrm_app) == []
    run_job(chatcrm_app, QUOTED_AT + timedelta(days=7, hours=23), "due")
    run_job(chatcrm_app, QUOTED_AT + timedelta(days=7, hours=23, minutes=30), "again")

    [sent] = reminders(chatcrm_app)
    assert sent.customer_id == acme and sent.conversation == "sam.sales"
    assert "no order has come in since" in sent.payload["formatted_text"]
