"""The example plugin's /quote, loaded through CHATCRM_PLUGINS, works on Slack (signed HTTP to the real
bolt app, answer at the response_url of the fake Slack API) and on Telegram (webhook to the real
python-telegram-bot Application, answer sent to the fake Bot API), with no edit to chatcrm."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bootstrap import build_app
from bot.settings import Settings
from crm_core.models import Product
from crm_core.services import customers, orders
from crm_core.services.users import PlatformId
from tests.slack_support import ADMIN, SlackServer, block_texts, slack_api, slack_env  # noqa: F401 - slack_api is a fixture
from tests.support import TEST_SECRET_KEY
from tests.telegram_rig import webhook_rig_with

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugins" / "chatcrm-example"


@pytest.fixture(autouse=True)
def example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))


def _priced_history(app) -> None:
    with app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
        widget = Product(sku="WID-1", name="Widget", price_cents=1250)
        uow.session.add(widget)
        uow.session.flush()
        orders.create_order(uow, acme, [orders.LineInput(widget.id, 2, 1100)])


def test_quote_on_slack(database_url, slack_api):
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        admins=(PlatformId("slack", ADMIN),),
        plugins=("chatcrm_example",),
        extra=slack_env(slack_api),
    )
    app = build_app(settings)
    server = SlackServer(app, slack_api).start()
    try:
        _priced_history(app)
        answer = server.ask("/quote acme WID-1 3")
        shown = block_texts(answer)
        assert "€33.00" in shown and "the customer's own last price" in shown, shown
    finally:
        server.stop()
        app.close()


def test_quote_on_telegram(database_url, fake_telegram):
    with webhook_rig_with(database_url, fake_telegram, CHATCRM_PLUGINS="chatcrm_example") as rig:
        from crm_core.models import Role

        _priced_history(rig.app)
        sam = rig.staff(900, "Sam Sales", Role.SALES)
        rig.send(fake_telegram.private_text(sam, "/quote acme WID-1 3"))
        text = fake_telegram.last_sent(900).text
        assert "€33.00" in text and "the customer's own last price" in text, text
