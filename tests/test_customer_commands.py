"""/customer, /customer new, /customer edit and /note through the real dispatcher, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bot.messages import Tone
from crm_core.models import (
    AuditEntry,
    Customer,
    CustomerTag,
    CustomFieldValue,
    FieldEntity,
    FieldType,
    Interaction,
    Role,
)
from crm_core.services import custom_fields, customers, deals, interactions


@pytest.fixture
def rep(chat):
    return chat.user("Rita Rep", Role.SALES)


@pytest.fixture
def acme(app, rep):
    with app.uow() as uow:
        customer = customers.create_customer(
            uow,
            "Acme Corp",
            {"email": "buy@acme.example", "country": "us", "tags": "vip,key-account", "company": "Acme Corp"},
        )
        deals.create_deal(uow, customer.id, "Printer fleet", amount_cents=1_250_000)
        for text in ("first call", "second call", "third call", "fourth call"):
            interactions.log_interaction(uow, customer.id, text)
        return customer.id


def _count(app, model) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.mark.parametrize("query", ["acme", "ACME", "acm", "acne", "buy@acme.example"])
def test_customer_shows_the_card(chat, rep, acme, query):
    said = chat.say(rep, f"/customer {query}")
    reply = said.reply
    assert reply.title == "Acme Corp"
    fields = {f.label: f.value for f in reply.fields}
    assert fields["Email"] == "buy@acme.example"
    assert fields["Country"] == "US"
    assert fields["Tags"] == "key-account, vip"
    sections = {s.title: s for s in reply.sections}
    assert [i.text for i in sections["Open deals (1)"].items] == ["#1 Printer fleet"]
    # The last three interactions, newest first.
    assert [i.text for i in sections["Recent interactions"].items] == ["fourth call", "third call", "second call"]
    assert {b.label for b in reply.buttons} == {"Log note", "New deal", "Edit", "New ticket"}


def test_several_matches_give_a_ranked_list_with_open_buttons(chat, rep, acme, app):
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Widgets")
    reply = chat.say(rep, "/customer acm").reply
    assert reply.title == "2 customers match 'acm'"
    items = reply.sections[0].items
    assert [i.text for i in items] == [f"Acme Corp (#{acme})", f"Acme Widgets (#{acme + 1})"]
    assert items[0].button.command == f"/customer #{acme}"
    # The button runs like a typed command and opens the card.
    assert chat.say(rep, items[0].button.command, from_button=True).reply.title == "Acme Corp"


def test_no_match_says_so_with_a_hint(chat, rep, acme):
    reply = chat.say(rep, "/customer zebra").reply
    assert reply.text == "No customer matches 'zebra'."
    assert "/customer new" in reply.footer
    assert reply.tone is Tone.WARNING


def test_customer_without_query_gets_usage(chat, rep):
    reply = chat.say(rep, "/customer").reply
    assert reply.tone is Tone.ERROR
    assert reply.footer == "Usage: /customer <query> [page=…]"


def test_customer_new_with_fields_and_custom_fields(chat, app):
    admin = chat.user("Ada Admin", Role.ADMIN)
    with app.uow() as uow:
        custom_fields.define_field(
            uow, FieldEntity.CUSTOMER, "industry", FieldType.CHOICE, choices=["retail", "pharma"]
        )
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "employees", FieldType.NUMBER)
    reply = chat.say(
        admin,
        '/customer new "Zoë Müller" email=zoe@example.de phone="+49 30 1234567" country=de '
        'language=de timezone=Europe/Berlin owner="Ada Admin" tags=vip industry=Retail employees=42',
    ).reply
    assert reply.tone is Tone.SUCCESS, reply
    fields = {f.label: f.value for f in reply.fields}
    assert reply.title == "Zoë Müller"
    assert fields["Owner"] == "Ada Admin"
    assert fields["Industry"] == "retail"
    assert fields["Employees"] == "42"
    assert chat.say(admin, "/customer muller").reply.title == "Zoë Müller"


@pytest.mark.parametrize(
    "line, message",
    [
        ("/customer new Bob email=not-an-email", "'not-an-email' is not an email address."),
        ("/customer new Bob country=Germany", "'Germany' is not an ISO 3166 country code (e.g. DE, GB, US)."),
        (
            "/customer new Bob timezone=Mars/Base",
            "Unknown timezone 'Mars/Base' (use an IANA name such as Europe/Berlin).",
        ),
        ("/customer new Bob owner=nobody", "No user called 'nobody'."),
        ("/customer new Bob colour=red", "Unknown field 'colour'"),
        ('/customer new Bob tags="a b"', "'a b' is not a tag: use letters, digits, - and _."),
        ('/customer new ""', "A customer needs a name."),
        ("/customer new Bob phone=12", "'12' is not a phone number."),
    ],
)
def test_customer_new_rejects_bad_input_and_writes_nothing(chat, rep, app, line, message):
    before = (_count(app, Customer), _count(app, AuditEntry))
    reply = chat.say(rep, line).reply
    assert reply.tone is Tone.ERROR
    assert reply.text.startswith(message)
    assert reply.footer.startswith("Usage: /customer new <name>")
    assert (_count(app, Customer), _count(app, AuditEntry)) == before


def test_duplicate_email_is_refused(chat, rep, acme):
    reply = chat.say(rep, "/customer new Other email=BUY@acme.example").reply
    assert reply.tone is Tone.ERROR
    assert reply.text == f"Acme Corp (#{acme}) already has the email BUY@acme.example."


def test_edit_changes_fields_tags_and_clears(chat, rep, acme, app):
    reply = chat.say(rep, f'/customer edit #{acme} phone="+1 555 0100 200" tags=+partner email=').reply
    assert reply.tone is Tone.SUCCESS
    assert reply.text == "Updated email, phone, tags."
    with app.uow() as uow:
        customer = customers.get_customer(uow, acme)
        assert customer.phone == "+1 555 0100 200"
        assert customer.email is None
        assert customer.tags == ["key-account", "partner", "vip"]
    chat.say(rep, f"/customer edit {acme} tags=-vip")
    with app.uow() as uow:
        assert customers.get_customer(uow, acme).tags == ["key-account", "partner"]


def test_edit_with_one_bad_field_changes_nothing(chat, rep, acme, app):
    reply = chat.say(rep, f"/customer edit #{acme} name=Renamed country=XYZ").reply
    assert reply.tone is Tone.ERROR
    with app.uow() as uow:
        assert customers.get_customer(uow, acme).name == "Acme Corp"


def test_edit_custom_field_validation(chat, rep, acme, app):
    with app.uow() as uow:
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "renewal", FieldType.DATE)
    bad = chat.say(rep, f"/customer edit #{acme} renewal=tomorrow").reply
    assert bad.text == "Renewal must be a date like 2026-12-01, not 'tomorrow'."
    assert _count(app, CustomFieldValue) == 0
    good = chat.say(rep, f"/customer edit #{acme} renewal=2027-01-31").reply
    assert {f.label: f.value for f in good.fields}["Renewal"] == "2027-01-31"


def test_edit_button_opens_a_form_and_the_form_saves(chat, rep, acme, app):
    with app.uow() as uow:
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "tier", FieldType.CHOICE, choices=["gold", "silver"])
    form = chat.say(rep, f"/customer edit #{acme}", from_button=True, wants_form=True).reply.form
    assert form.command == "/customer edit"
    assert form.fixed == {"customer": f"#{acme}"}
    inputs = {i.name: i for i in form.inputs}
    assert inputs["name"].initial == "Acme Corp"
    assert inputs["tier"].choices == ("gold", "silver")
    values = {i.name: i.initial or "" for i in form.inputs} | form.fixed | {"tier": "gold", "country": "CA"}
    reply = chat.say(rep, form.command, form_values=values).reply
    assert reply.text == "Updated country, tier."
    # Only the fields that changed are audited.
    with app.uow() as uow:
        updates = uow.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.entity_type == "customers")
        ).all()
        assert [u.after for u in updates] == [{"country": "CA"}]


def test_form_with_invalid_inputs_is_rejected_inline(chat, rep, acme, app):
    from bot.dispatch import FormRejected

    with pytest.raises(FormRejected) as rejected:
        chat.say(rep, "/customer edit", form_values={"customer": f"#{acme}", "email": "nope", "country": "Narnia"})
    assert rejected.value.errors == {
        "email": "'nope' is not an email address",
        "country": "'Narnia' is not an ISO 3166 country code (e.g. DE, GB, US)",
    }
    with app.uow() as uow:
        assert customers.get_customer(uow, acme).email == "buy@acme.example"


def test_note_is_logged_and_shows_on_the_card(chat, rep, acme, app):
    reply = chat.say(rep, "/note acme Called Bob: they want 3 more printers & toner <soon>").reply
    assert reply.text == f"Note logged on Acme Corp (#{acme})."
    with app.uow() as uow:
        latest = uow.session.scalars(sa.select(Interaction).order_by(Interaction.id.desc())).first()
        assert latest.text == "Called Bob: they want 3 more printers & toner <soon>"
        assert latest.channel == "console"
        assert latest.user.name == "Rita Rep"
    card = chat.say(rep, "/customer acme").reply
    recent = next(s for s in card.sections if s.title == "Recent interactions")
    assert recent.items[0].text == "Called Bob: they want 3 more printers & toner <soon>"


def test_note_kind_option_and_errors(chat, rep, acme, app):
    assert chat.say(rep, "/note acme kind=call rang them").reply.text == f"Call logged on Acme Corp (#{acme})."
    assert chat.say(rep, "/note acme").reply.footer == "Usage: /note <customer> <text> [kind=…]"
    assert chat.say(rep, "/note nobody-here hello").reply.text == "No customer matches 'nobody-here'."


def test_note_button_asks_for_the_text(chat, rep, acme):
    form = chat.say(rep, f"/note #{acme}", from_button=True, wants_form=True).reply.form
    assert [i.name for i in form.inputs] == ["text", "kind"]
    assert form.fixed == {"customer": f"#{acme}"}
    reply = chat.say(rep, "/note", form_values={**form.fixed, "text": "from the modal", "kind": ""}).reply
    assert reply.tone is Tone.SUCCESS


def test_ambiguous_customer_reference_lists_candidates(chat, rep, acme, app):
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Widgets")
    reply = chat.say(rep, "/note acm hello").reply
    assert (
        reply.text == f"'acm' matches several customers: Acme Corp (#{acme}), Acme Widgets (#{acme + 1}). Use the #id."
    )
    assert _count(app, Interaction) == 4
