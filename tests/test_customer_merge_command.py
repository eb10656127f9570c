"""/customer merge <keep> <other>: a confirmation with a Merge button, then everything of the duplicate
(orders, deals, tickets, notes, chats, consents, custom fields) moves, the duplicate is deleted and
it is all in the audit log; for managers and admins only. On both databases, and over Telegram."""

from __future__ import annotations

import sqlalchemy as sa

from bot.messages import Style, Tone
from crm_core.models import (
    AuditEntry,
    Consent,
    Customer,
    CustomerChat,
    CustomFieldValue,
    Deal,
    Interaction,
    Order,
    Product,
    Role,
    Ticket,
)
from crm_core.services import consent, custom_fields, customer_chats, customers, deals, interactions, orders, tickets
from crm_core.services.users import PlatformId
from tests.support import count, rows
from tests.telegram_rig import SUPPORT_CHAT


def _duplicates(app) -> tuple[int, int]:
    """Acme Corp, and a duplicate that came in by Telegram with something of every kind."""
    with app.uow() as uow:
        keep = customers.create_customer(uow, "Acme Corp", {"email": "buy@acme.example"}).id
        chat = customer_chats.ensure_chat(uow, PlatformId("telegram", "4242"), "4242", "Acme Buyer")
        other = chat.customer_id
        consent.opt_in(uow, other, "telegram", "4242", "started the bot")
        product = Product(sku="P-1", name="Printer", price_cents=1500)
        uow.session.add(product)
        uow.session.flush()
        orders.create_order(uow, other, [orders.LineInput(product.id, 2, 1500)], number="ORD-1")
        deals.create_deal(uow, other, "Printers", amount_cents=3000)
        tickets.create_ticket(uow, other, "Printer jams")
        interactions.log_interaction(uow, other, "called about toner")
        region = custom_fields.define_field(
            uow, custom_fields.FieldEntity.CUSTOMER, "region", custom_fields.FieldType.TEXT
        )
        custom_fields.set_value(uow, region, other, "EMEA")
    return keep, other


def test_a_duplicate_with_nothing_to_move_says_so_and_names_both_by_id(chat, app):
    with app.uow() as uow:
        keep = customers.create_customer(uow, "Acme Corp").id
        other = customers.create_customer(uow, "Acme Corp").id
    manager = chat.user("Mia Manager", Role.MANAGER)
    asked = chat.say(manager, f"/customer merge #{keep} #{other}").reply
    assert asked.title == f"Merge Acme Corp (#{other}) into Acme Corp (#{keep})?"
    assert asked.text == (
        f"Acme Corp (#{keep}) gets nothing from Acme Corp (#{other}): it has no orders, deals, tickets, "
        f"notes or other records. #{other} is then deleted. This cannot be undone."
    )
    assert count(app, Customer) == 2


def test_merge_asks_then_moves_everything_and_audits_it(chat, app):
    keep, other = _duplicates(app)
    manager = chat.user("Mia Manager", Role.MANAGER)
    asked = chat.say(manager, f"/customer merge buy@acme.example #{other}").reply
    assert asked.tone is Tone.WARNING
    assert asked.title == f"Merge Acme Buyer (#{other}) into Acme Corp (#{keep})?"
    assert asked.text.startswith(f"Acme Corp (#{keep}) gets everything of Acme Buyer (#{other}): ")
    assert "1 order," in asked.text and "1 deal," in asked.text and "1 ticket" in asked.text
    assert "1 customer chat," in asked.text and "1 customer consent," in asked.text
    merge = next(b for b in asked.buttons if b.label == "Merge")
    assert merge.style is Style.DANGER
    # Nothing has happened yet.
    assert count(app, Customer) == 2

    done = chat.say(manager, merge.command, from_button=True).reply
    assert done.tone is Tone.SUCCESS and done.title == "Acme Corp"
    assert done.text.startswith(f"Merged Acme Buyer (#{other}) into this customer: moved ")
    fields = {f.label: f.value for f in done.fields}
    assert fields["Orders"].startswith("1 ·") and fields["Region"] == "EMEA"
    assert [c.id for c in rows(app, Customer)] == [keep]
    for model in (Order, Deal, Ticket, Interaction, CustomerChat, Consent):
        assert {r.customer_id for r in rows(app, model)} == {keep}, model
    assert [v.entity_id for v in rows(app, CustomFieldValue)] == [keep]
    # Every move and the deletion are audited, by the manager.
    audited = rows(app, AuditEntry, AuditEntry.actor_name == "Mia Manager")
    assert ("delete", "customers", str(other)) in {(a.action, a.entity_type, a.entity_id) for a in audited}
    moved = {a.entity_type for a in audited if a.action == "update"}
    assert {"orders", "deals", "tickets", "interactions", "customer_chats", "customer_consents"} <= moved
    # The button again: the duplicate is gone, nothing more happens.
    again = chat.say(manager, merge.command, from_button=True).reply
    assert (again.tone, again.text) == (Tone.ERROR, f"There is no customer #{other}.")


def test_merge_is_for_managers_and_admins_and_refuses_nonsense(chat, app):
    keep, other = _duplicates(app)
    rep = chat.user("Rita Rep", Role.SALES)
    refused = chat.say(rep, f"/customer merge #{keep} #{other}").reply
    assert refused.tone is Tone.ERROR and "can't use /customer merge" in refused.text
    assert "can't use /customer merge confirm" in chat.say(rep, f"/customer merge confirm {keep} {other}").text
    assert count(app, Customer) == 2
    admin = chat.user("Ada Admin", Role.ADMIN)
    same = chat.say(admin, f"/customer merge #{keep} buy@acme.example").reply
    assert same.text == f"Both name Acme Corp (#{keep}): give two different customers."
    assert chat.say(admin, f"/customer merge confirm {keep} {keep}").reply.text == (
        "A customer cannot be merged into itself."
    )
    assert chat.say(admin, "/customer merge acme").reply.footer == "Usage: /customer merge <keep> <other>"


def test_merge_by_telegram_buttons(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    keep, other = _duplicates(rig.app)
    mia = rig.staff(905, "Mia Manager", Role.MANAGER)
    rig.send(tg.group_text(SUPPORT_CHAT, mia, f"/customer merge #{keep} #{other}"))
    asked = tg.last_sent(SUPPORT_CHAT)
    assert "Merge Acme Buyer" in asked.text
    rig.send(tg.press(mia, asked, "Merge"))
    assert "Merged Acme Buyer" in tg.last_sent(SUPPORT_CHAT).text
    with rig.app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1
