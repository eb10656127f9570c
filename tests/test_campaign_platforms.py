"""Campaigns through the real Telegram side: a customer opts in with /start, the real worker
(scheduler + outbox sender + python-telegram-bot) sends the campaign to the fake Telegram Bot
API, the customer presses Unsubscribe, and a manager's live status card is edited in place
until the run is done. Over the webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.platforms import senders
from crm_core import scheduling
from crm_core.models import Consent, Role
from tests.fakes.worker import chat_worker, wait_until
from tests.support import rows


def test_opt_in_campaign_unsubscribe_and_live_status_on_telegram(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    manager = rig.staff(700, "Mia Manager", Role.MANAGER)
    carla, dan = rig.customer(555, "Carla C"), rig.customer(556, "Dan D")
    rig.send(tg.private_text(carla, "/start"))
    rig.send(tg.private_text(dan, "/start"))
    assert "send /stop any time" in tg.last_sent(555).text
    assert [(c.status, c.opted_in_source) for c in rows(rig.app, Consent)] == [("opted_in", "started the bot")] * 2

    rig.send(tg.private_text(manager, "/segment new everyone all"))
    rig.send(tg.private_text(manager, "/campaign new hello segment=everyone template=campaign_first_order at=now"))
    preview_before = len(tg.sent(700))
    rig.send(tg.private_text(manager, "/campaign preview hello"))
    assert len(tg.sent(700)) == preview_before + 1 and "thank you for your first order" in tg.last_sent(700).text
    rig.send(tg.private_text(manager, "/campaign start hello"))
    assert "started" in tg.last_sent(700).text
    # The run is frozen before the worker comes up, so the status card is asked for while it is in flight.
    scheduling.run_due(rig.app.session_factory, tasks=rig.app.plugins.tasks)
    rig.send(tg.private_text(manager, "/campaign status hello"))
    assert "live card below" in tg.last_sent(700).text

    with chat_worker(rig.app, senders(rig.app), CHATCRM_CAMPAIGN_TICK="1"):
        assert tg.wait_for(lambda: len(tg.sent(555)) >= 2 and len(tg.sent(556)) >= 2, timeout=30)
        message = tg.last_sent(555)
        assert "Hello <b>Carla</b>, thank you for your first order" in message.params["text"]
        # The live card (the last message to the manager) is edited until it says the run is finished.
        assert tg.wait_for(lambda: "Campaign hello" in tg.last_sent(700).text, timeout=30)
        card = tg.message(tg.last_sent(700))
        assert wait_until(lambda: "Finished." in tg.text_of(700, card["message_id"]), timeout=30)
        final = tg.text_of(700, card["message_id"])
        assert "Sent 2 · pending 0" in final and "100%" in final
        assert len(tg.history(700, card["message_id"])) >= 2
        # Carla unsubscribes with the button under the message.
        rig.send(tg.press(carla, message, "Unsubscribe"))
        # With a worker up, its sender may claim the reply and send it after the webhook's 200.
        assert tg.wait_for(lambda: "no more marketing messages" in tg.last_sent(555).text, timeout=30)
    consent = {c.customer_id: c for c in rows(rig.app, Consent)}
    assert sorted((c.status, c.opted_out_source or "") for c in consent.values()) == [
        ("opted_in", ""),
        ("opted_out", "unsubscribe button"),
    ]
