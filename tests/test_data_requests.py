"""Data subject requests: /customer export (everything about a person, as a private file) and
/customer erase (personal data gone from every table, the audit log included by crypto-shredding;
orders and figures kept under a pseudonym). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.settings import Settings
from crm_core import events
from crm_core.actor import Actor
from crm_core.clock import utcnow
from crm_core.exporting.run import export
from crm_core.models import (
    Base,
    Campaign,
    CampaignRecipient,
    CampaignRun,
    Customer,
    CustomerChat,
    CustomerScore,
    Interaction,
    Order,
    OrderLine,
    OutboxMessage,
    OutboxStatus,
    Product,
    RelationshipType,
    Role,
    Segment,
)
from crm_core.services import consent, customers, deals, followups, interactions, orders, tickets
from tests.slack_support import slack, slack_api  # noqa: F401 - fixtures
from tests.support import Chat

NAME = "Zebulon Quackenbush"
EMAIL = "zebulon@quackenbush.example"
PHONE = "+49 30 5550199"
CHAT_ID = "7319024468"
NOTE_WORD = "flibbertigibbet"
TICKET_WORD = "snorkelwacker"
BIRTHDAY = "Xylophonic-1979"
# Every one of these must be gone after the erasure, wherever it was stored.
PERSONAL = [NAME, "Zebulon", "Quackenbush", EMAIL, "5550199", CHAT_ID, NOTE_WORD, TICKET_WORD, BIRTHDAY]


@pytest.fixture
def settings(database_url):
    # A configured key: data keys are wrapped with it (the SQLite default would generate one).
    return Settings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef")


def _seed(app, chat: Chat) -> dict[str, Any]:
    admin = chat.user("Ada Admin", Role.ADMIN)
    chat.say(admin, "/field new customer birthday text personal=yes")
    chat.say(admin, "/field new customer shoe_size number")
    said = chat.say(
        admin,
        f'/customer new "{NAME}" email={EMAIL} phone="{PHONE}" company="Acme Widgets" tags=vip '
        f"birthday={BIRTHDAY} shoe_size=44",
    )
    assert "Created" in said.text, said.text
    other_said = chat.say(admin, '/customer new "Olga Other" email=olga@other.example phone="+33 1 4400 1234"')
    assert "Created" in other_said.text
    actor = Actor(user_id=1, name="Ada Admin", platform="console")
    with app.uow(actor) as uow:
        zeb = customers.resolve_customer(uow, EMAIL)
        olga = customers.resolve_customer(uow, "olga@other.example")
        uow.session.add(
            CustomerChat(
                customer_id=zeb.id, platform="telegram", external_id=CHAT_ID, conversation=CHAT_ID, display_name="Zeb Q"
            )
        )
        consent.opt_in(uow, zeb.id, "telegram", CHAT_ID, "telegram /start")
        interactions.log_interaction(uow, zeb.id, f"Called him, he said {NOTE_WORD} twice")
        interactions.log_interaction(uow, olga.id, "Olga wants a catalogue")
        incoming = tickets.customer_wrote(
            uow, zeb.id, f"My order {TICKET_WORD} is late", channel="telegram", external_message_id="55"
        )
        tickets.answer(uow, incoming.ticket.id, "Sorry, on its way", channel="telegram")
        products = [Product(sku=f"SKU-{i}", name=f"Widget {i}", price_cents=1000 * i) for i in (1, 2)]
        uow.session.add_all(products)
        uow.session.flush()
        for who in (zeb.id, olga.id):
            orders.create_order(
                uow, who, [orders.LineInput(products[0].id, 3), orders.LineInput(products[1].id, 2, 1550)]
            )
        deals.create_deal(uow, zeb.id, f"{NAME} renewal", 120000)
        followups.create_followup(uow, zeb.id, 1, utcnow() + timedelta(days=2), f"call back about {NOTE_WORD}")
        customers.add_relationship(uow, zeb.id, olga.id, RelationshipType.PARTNER, note=f"{NAME} met Olga")
        uow.session.add(CustomerScore(customer_id=zeb.id, churn_risk=0.4, rfm_segment="Champions"))
        segment = Segment(name="vips", filter="tag:vip")
        uow.session.add(segment)
        uow.session.flush()
        campaign = Campaign(name="spring", segment_id=segment.id, template="newsletter")
        uow.session.add(campaign)
        uow.session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, scheduled_for=utcnow())
        uow.session.add(run)
        uow.session.flush()
        for status in (OutboxStatus.SENT, OutboxStatus.PENDING):
            recipient = CampaignRecipient(
                run_id=run.id, campaign_id=campaign.id, customer_id=zeb.id, platform="telegram", conversation=CHAT_ID
            )
            if status is OutboxStatus.PENDING:
                run = CampaignRun(campaign_id=campaign.id, number=2, scheduled_for=utcnow() + timedelta(days=7))
                uow.session.add(run)
                uow.session.flush()
                recipient.run_id = run.id
            uow.session.add(recipient)
            uow.session.flush()
            uow.session.add(
                OutboxMessage(
                    idempotency_key=f"campaign:{recipient.id}",
                    kind="campaign",
                    platform="telegram",
                    conversation=CHAT_ID,
                    payload={"v": 1, "formatted_text": f"Hello {NAME}!", "format": "text"},
                    status=status,
                    customer_id=zeb.id,
                    ref_id=recipient.id,
                )
            )
        return {"admin": admin, "zeb": zeb.id, "olga": olga.id}


def _everything_as_text(app) -> dict[str, str]:
    """Every text, JSON and binary value of every table, by table."""
    found: dict[str, list[str]] = {}
    with app.uow() as uow:
        for table in Base.metadata.sorted_tables:
            for row in uow.session.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, str):
                        found.setdefault(table.name, []).append(value)
                    elif isinstance(value, bytes | memoryview):
                        found.setdefault(table.name, []).append(bytes(value).decode("latin-1"))
                    elif isinstance(value, dict | list):
                        found.setdefault(table.name, []).append(json.dumps(value, ensure_ascii=False))
    return {name: "\n".join(values) for name, values in found.items()}


def _leaks(texts: dict[str, str]) -> list[tuple[str, str]]:
    return [(table, word) for table, text in texts.items() for word in PERSONAL if word.lower() in text.lower()]


def _figures(app, customer_id: int) -> dict[str, Any]:
    with app.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        mine = list(uow.session.scalars(sa.select(Order).where(Order.customer_id == customer_id)))
        lines = {
            order.id: uow.session.scalar(
                sa.select(sa.func.sum(OrderLine.line_total_cents)).where(OrderLine.order_id == order.id)
            )
            for order in mine
        }
        return {
            "ltv": customer.lifetime_value_cents,
            "orders": customer.order_count,
            "totals": sorted((o.id, o.total_cents) for o in mine),
            "lines": sorted(lines.items()),
            "revenue": uow.session.scalar(sa.select(sa.func.sum(Order.total_cents))),
        }


def _snapshot_of(app, customer_id: int) -> dict[str, Any]:
    with app.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        notes = list(uow.session.scalars(sa.select(Interaction.text).where(Interaction.customer_id == customer_id)))
        return {"name": customer.name, "email": customer.email, "phone": customer.phone, "notes": notes}


def test_subject_access_export_holds_every_kind_of_data(app, chat, tmp_path):
    seeded = _seed(app, chat)
    said = chat.say(seeded["admin"], f"/customer export #{seeded['zeb']}")
    reply = said.reply
    assert reply.private and reply.file is not None, said.text
    assert reply.file.name == f"customer-{seeded['zeb']}-data.json" and reply.file.mime == "application/json"
    document = json.loads(reply.file.data())
    assert document["customer"]["name"] == NAME and document["customer"]["email"] == EMAIL
    assert document["customer"]["company"]["name"] == "Acme Widgets" and document["customer"]["tags"] == ["vip"]
    assert document["custom_fields"]["birthday"] == {"label": "Birthday", "personal": True, "value": BIRTHDAY}
    assert document["custom_fields"]["shoe_size"]["value"] == 44
    assert document["chats"][0]["external_id"] == CHAT_ID
    assert document["consents"][0]["conversation"] == CHAT_ID and document["consents"][0]["history"]
    assert len(document["orders"]) == 1 and len(document["orders"][0]["lines"]) == 2
    assert document["deals"][0]["title"] == f"{NAME} renewal" and document["deals"][0]["stage_changes"] is not None
    [ticket] = document["tickets"]
    assert [m["text"] for m in ticket["messages"]] == [f"My order {TICKET_WORD} is late", "Sorry, on its way"]
    assert any(NOTE_WORD in i["text"] for i in document["interactions"])
    assert {m["campaign"] for m in document["campaign_messages"]} == {"spring"}
    assert len(document["messages_sent"]) == 2
    assert document["scores"]["rfm_segment"] == "Champions"
    assert NOTE_WORD in document["follow_ups"][0]["text"]
    assert document["relationships"][0]["other"] == "Olga Other"
    # The audit entries about them, personal values decrypted.
    created = [e for e in document["audit"] if e["entity_type"] == "customers" and e["action"] == "create"]
    assert created[0]["after"]["name"] == NAME and created[0]["after"]["email"] == EMAIL
    # The export is audited: who exported whom.
    with app.uow() as uow:
        from crm_core.models import AuditEntry

        entry = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export")).one()
        assert (entry.actor_name, entry.entity_type, entry.entity_id) == ("Ada Admin", "customers", str(seeded["zeb"]))


def test_erasure_leaves_no_personal_value_anywhere_and_keeps_the_figures(app, chat, tmp_path):
    seeded = _seed(app, chat)
    zeb, olga = seeded["zeb"], seeded["olga"]
    before = _figures(app, zeb)
    assert before["totals"] == before["lines"]  # the orders add up to begin with
    other_before = _snapshot_of(app, olga)
    assert _leaks(_everything_as_text(app))  # the scan does find them while they are there

    # A non-admin may neither export nor erase.
    sales = chat.user("Sam Sales", Role.SALES)
    for command in (f"/customer erase #{zeb}", f"/customer export #{zeb}"):
        refused = chat.say(sales, command)
        assert refused.reply.file is None and "can't use" in refused.text, refused.text

    # The first step only asks; nothing is erased without the confirmation.
    preview = chat.say(seeded["admin"], f"/customer erase #{zeb} asked by email on 2026-05-01")
    assert "cannot be undone" in preview.text
    assert _snapshot_of(app, zeb)["name"] == NAME
    wrong = chat.say(seeded["admin"], f"/customer erase #{zeb} confirm=00000000")
    assert "cannot be undone" in wrong.text and _snapshot_of(app, zeb)["name"] == NAME
    [confirm] = [b for b in preview.reply.buttons if b.label == "Erase for good"]
    done = chat.say(seeded["admin"], confirm.command, from_button=True)
    assert f"Erased customer #{zeb}" in done.text, done.text

    texts = _everything_as_text(app)
    leaks = _leaks(texts)
    assert leaks == [], [line for t, w in leaks for line in texts[t].splitlines() if w.lower() in line.lower()]
    with app.uow() as uow:
        for kind in ("customers", "interactions", "tickets", "deals", "orders", "audit"):
            out = tmp_path / f"{kind}.json"
            export(uow, kind, fmt="json", out=str(out))
            text = out.read_text(encoding="utf-8").lower()
            assert [word for word in PERSONAL if word.lower() in text] == [], kind

    after = _figures(app, zeb)
    assert after == before
    assert _snapshot_of(app, olga) == other_before
    with app.uow() as uow:
        erased = uow.session.get(Customer, zeb)
        assert erased.name == f"Erased customer #{zeb}" and erased.erased_at is not None
        assert uow.session.scalars(sa.select(OutboxMessage.status).where(OutboxMessage.customer_id == zeb)).all() == [
            OutboxStatus.SENT,
            OutboxStatus.CANCELLED,
        ]
    with app.uow() as uow:
        [event] = events.recent(uow.session, type_prefix="customer.erased")
        assert event.payload == {"customer_id": zeb}

    # The audit log still tells what happened, with [erased] where the values were, and why.
    log = chat.say(seeded["admin"], f"/audit #{zeb}").text
    assert "[erased]" in log and "asked by email on 2026-05-01" in log, log
    assert "Olga Other" in chat.say(seeded["admin"], f"/audit #{olga}").text
    # A second erasure has nothing left to do.
    again = chat.say(seeded["admin"], f"/customer erase #{zeb}")
    assert "already erased" in again.text


def test_personal_audit_fields_name_real_columns():
    from crm_core.customer_keys import PERSONAL_FIELDS

    for table, (columns, _resolve) in PERSONAL_FIELDS.items():
        assert table in Base.metadata.tables, table
        assert columns <= set(Base.metadata.tables[table].columns.keys()), table


# -- the file reaches the admin privately, on every platform ----------------------------------------


def _customer(app, name: str = "Petra Private", email: str = "petra@private.example") -> int:
    with app.uow() as uow:
        return customers.create_customer(uow, name, {"email": email}).id


def test_slack_uploads_the_export_into_the_admins_direct_messages(slack):
    from tests.fakes.slack_api import FILE_UPLOAD
    from tests.slack_support import ADMIN

    customer_id = _customer(slack.app)
    answer = slack.ask(f"/customer export #{customer_id}", channel="C1")
    assert answer["response_type"] == "ephemeral"
    opened = slack.api.wait_for("conversations.open")[0]
    assert opened.args["users"] == ADMIN
    upload = slack.api.wait_for(FILE_UPLOAD)[0]
    assert json.loads(upload.body)["customer"]["email"] == "petra@private.example"
    complete = slack.api.wait_for("files.completeUploadExternal")[0]
    # Into the DM conversations.open gave, never the channel the command was typed in.
    assert complete.args["channel_id"] == "D" + ADMIN.lstrip("UW")
    assert complete.json_arg("files")[0]["title"] == f"Data of customer #{customer_id}"


def test_telegram_sends_the_export_as_a_document_to_the_admins_own_chat(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    admin = rig.staff(4242, "Ada Admin", Role.ADMIN)
    customer_id = _customer(rig.app)
    # Typed in a group: the file still goes to the admin's private chat with the bot.
    rig.send(tg.group_text(-100500, admin, f"/customer export #{customer_id}"))
    assert tg.wait_for(lambda: tg.calls_of("sendDocument"))
    [document] = tg.calls_of("sendDocument")
    assert str(document["chat_id"]) == "4242" and document["document:filename"] == f"customer-{customer_id}-data.json"
    assert json.loads(document.files["document"])["customer"]["name"] == "Petra Private"


def test_the_console_writes_the_export_into_the_working_directory(app, tmp_path, monkeypatch):
    import io

    from bot.adapters.console.adapter import run_console

    customer_id = _customer(app)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    run_console(app, stdin=io.StringIO(f"/customer export #{customer_id}\n"), stdout=out)
    saved = tmp_path / f"customer-{customer_id}-data.json"
    assert f"saved to {saved}" in out.getvalue(), out.getvalue()
    assert json.loads(saved.read_text(encoding="utf-8"))["customer"]["name"] == "Petra Private"
    assert saved.stat().st_mode & 0o777 == 0o600
