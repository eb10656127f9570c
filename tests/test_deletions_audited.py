"""Nothing disappears unaudited: a Telegram placeholder customer hands everything to the real
customer before it goes, and every deletion, by a service, a database cascade or a bulk
statement, leaves an audit entry with what was deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crm_core.actor import Actor
from crm_core.clock import utcnow
from crm_core.models import (
    AuditEntry,
    Consent,
    ConsentStatus,
    Customer,
    CustomerChat,
    CustomerRelationship,
    CustomerTag,
    DomainEvent,
    FieldEntity,
    FieldType,
    FollowUp,
    Interaction,
    RelationshipType,
    Role,
    Ticket,
)
from crm_core.services import (
    audit_log,
    custom_fields,
    customer_merge,
    customers,
    deals,
    followups,
    relationships,
    users,
)
from tests.support import Chat, count, rows


def _deleted(app, entity_type: str) -> list[audit_log.Entry]:
    """Deletion entries as a reader sees them (personal values decrypted)."""
    with app.uow() as uow:
        found = uow.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "delete", AuditEntry.entity_type == entity_type)
            .order_by(AuditEntry.id)
        )
        return [audit_log.readable(uow.session, entry) for entry in found]


def test_telegram_opt_in_moves_to_the_customer_found_by_phone_and_the_placeholder_is_audited(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    with rig.app.uow() as uow:
        known = customers.create_customer(uow, "Acme Buyer", {"phone": "+49 30 1234 5678"}).id
    carla = rig.customer(555, "Carla C")

    rig.send(tg.private_text(carla, "/start"))
    rig.send(tg.private_text(carla, "Is my invoice ready?"))
    [placeholder_chat] = rows(rig.app, CustomerChat)
    placeholder = placeholder_chat.customer_id
    with rig.app.uow() as uow:
        # Staff tagged the placeholder and set a reminder on it before she shared her number.
        customers.update_customer(uow, placeholder, {"tags": "telegram-lead"})
    rig.send(tg.contact(carla, "030 12345678"))

    [consent] = rows(rig.app, Consent)
    assert (consent.customer_id, consent.platform, consent.status) == (known, "telegram", ConsentStatus.OPTED_IN)
    assert consent.conversation == "555" and consent.opted_in_source == "started the bot"
    assert {t.customer_id for t in rows(rig.app, Ticket)} == {known}
    assert {i.customer_id for i in rows(rig.app, Interaction)} == {known}
    with rig.app.uow() as uow:
        assert uow.session.execute(sa.select(CustomerTag.customer_id, CustomerTag.tag)).all() == [
            (known, "telegram-lead")
        ]
    assert [c.id for c in rows(rig.app, Customer)] == [known]

    # The placeholder's deletion is in the audit log, with what it was.
    [gone] = _deleted(rig.app, "customers")
    assert gone.entity_id == str(placeholder) and gone.before["name"] == "Carla C"
    # Staff asking see the opt-in on the real customer.
    sam = rig.staff(900, "Sam Support", Role.ADMIN)
    rig.send(tg.group_text(-1005005005, sam, f"/consent show #{known}"))
    assert "opted in" in tg.last_sent(-1005005005).text


def test_deleting_a_customer_audits_the_rows_the_database_cascades_to(app):
    """Consents, follow-ups and the rest go by ON DELETE CASCADE, which the ORM never sees."""
    with app.uow() as uow:
        rita = users.ensure_user(uow, users.PlatformId("console", "rita"), display_name="Rita Rep", role=Role.SALES)
        customer = customers.create_customer(uow, "Doomed Ltd", {"tags": "a"})
        uow.session.add(
            Consent(customer_id=customer.id, platform="telegram", conversation="77", status=ConsentStatus.OPTED_IN)
        )
        followups.create_followup(uow, customer.id, rita.id, utcnow() + timedelta(days=1), "call back")
        customer_id = customer.id
    with app.uow(Actor(user_id=None, name="Ada Admin", platform="console")) as uow:
        uow.session.delete(customers.get_customer(uow, customer_id))

    [consent] = _deleted(app, "customer_consents")
    assert consent.before["conversation"] == "77" and consent.actor_name == "Ada Admin"
    [followup] = _deleted(app, "followups")
    assert followup.before["text"] == "call back"
    assert [e.entity_id for e in _deleted(app, "customer_tags")] == [f"{customer_id}/a"]
    assert [e.entity_id for e in _deleted(app, "customers")] == [str(customer_id)]
    assert rows(app, Consent) == [] and rows(app, FollowUp) == []


def test_bulk_delete_of_an_audited_model_is_audited_row_by_row(app):
    with app.uow() as uow:
        for name in ("One", "Two", "Three"):
            customers.create_customer(uow, name, {"tags": "bulk"})
    with app.uow() as uow:
        uow.session.execute(sa.delete(CustomerTag).where(CustomerTag.tag == "bulk"))
    assert [e.before["tag"] for e in _deleted(app, "customer_tags")] == ["bulk", "bulk", "bulk"]
    assert count(app, CustomerTag) == 0


def test_every_service_deletion_is_audited(app):
    chat = Chat(app)
    admin = chat.user("Ada Admin", Role.ADMIN)
    chat.say(admin, "/segment new doomed country=DE")
    assert "deleted" in chat.say(admin, "/segment delete doomed").text
    assert [e.before["name"] for e in _deleted(app, "segments")] == ["doomed"]

    with app.uow() as uow:
        definition = custom_fields.define_field(uow, FieldEntity.CUSTOMER, "shoe", FieldType.NUMBER)
        customer_id = customers.create_customer(uow, "Feet Inc").id
        custom_fields.set_value(uow, definition, customer_id, 42.0)
    chat.say(admin, f"/customer edit #{customer_id} shoe=")
    [value] = _deleted(app, "custom_field_values")
    assert value.before["value_number"] == 42.0

    chat.say(admin, "/template set followup_reminder en Call {{ customer.name }}")
    chat.say(admin, "/template reset followup_reminder en")
    assert len(_deleted(app, "template_overrides")) == 1

    chat.say(admin, "/digest subscribe daily 08:00")
    chat.say(admin, "/digest unsubscribe")
    assert len(_deleted(app, "digest_subscriptions")) == 1


def test_merging_moves_everything_and_folds_what_both_customers_have(app):
    """The kept customer's own consent decision, tag and field value stay unless the other's is newer."""
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with app.uow() as uow:
        keep = customers.create_customer(uow, "Acme Buyer", {"tags": "vip"}).id
        other = customers.create_customer(uow, "Acme B.", {"tags": "vip,lead"}).id
        third = customers.create_customer(uow, "Colleague").id
        shoe = custom_fields.define_field(uow, FieldEntity.CUSTOMER, "shoe", FieldType.NUMBER)
        size = custom_fields.define_field(uow, FieldEntity.CUSTOMER, "size", FieldType.TEXT)
        custom_fields.set_value(uow, shoe, keep, 42.0)
        custom_fields.set_value(uow, shoe, other, 44.0)
        custom_fields.set_value(uow, size, other, "XL")
        # An old Slack opt-in on the kept record, a newer opt-out on the other; Telegram only on the other.
        uow.session.add_all(
            [
                Consent(
                    customer_id=keep,
                    platform="slack",
                    conversation="C1",
                    status=ConsentStatus.OPTED_IN,
                    opted_in_at=t0,
                    opted_in_source="admin",
                ),
                Consent(
                    customer_id=other,
                    platform="slack",
                    conversation="C1",
                    status=ConsentStatus.OPTED_OUT,
                    opted_in_at=t0,
                    opted_out_at=t0 + timedelta(days=1),
                    opted_out_source="/stop",
                ),
                Consent(
                    customer_id=other,
                    platform="telegram",
                    conversation="9",
                    status=ConsentStatus.OPTED_IN,
                    opted_in_at=t0,
                    opted_in_source="started the bot",
                ),
            ]
        )
        deal = deals.create_deal(uow, other, "Printers", amount_cents=1000)
        relationships.add_relationship(uow, other, keep, RelationshipType.COLLEAGUE)
        relationships.add_relationship(uow, third, other, RelationshipType.REPORTS_TO)
    with app.uow() as uow:
        moved = customer_merge.merge(uow, keep, other)
    assert moved["customer_consents"] == 2 and moved["deals"] == 1

    with app.uow() as uow:
        consents = {c.platform: (c.customer_id, c.status) for c in uow.session.scalars(sa.select(Consent))}
        assert consents == {"slack": (keep, ConsentStatus.OPTED_OUT), "telegram": (keep, ConsentStatus.OPTED_IN)}
        assert customers.get_customer(uow, keep).tags == ["lead", "vip"]
        values = {v.definition.key: v.value for v in custom_fields.values_for(uow, FieldEntity.CUSTOMER, keep)}
        assert values == {"shoe": 42.0, "size": "XL"}
        assert deals.get_deal(uow, deal.id).customer_id == keep
        relations = uow.session.execute(
            sa.select(CustomerRelationship.customer_id, CustomerRelationship.related_customer_id)
        ).all()
        assert relations == [(third, keep)]
    assert [c.id for c in rows(app, Customer)] == [keep, third]
    assert [e.entity_id for e in _deleted(app, "customers")] == [str(other)]
    [merged] = rows(app, DomainEvent, DomainEvent.type == "customer.merged")
    assert merged.payload == {"customer_id": keep, "merged_id": other, "name": "Acme Buyer"}
