"""/customer finds people by their company's name, their email domain and the last 6+ digits of
their phone number, whatever format the number was stored in; on both databases."""

from __future__ import annotations

import pytest

from crm_core import search
from crm_core.models import Customer, Role
from crm_core.services import customers


@pytest.fixture
def people(app):
    with app.uow() as uow:
        made = {
            name: customers.create_customer(uow, name, fields).id
            for name, fields in [
                ("Acme Corp", {"company": "Acme Corp", "kind": "account"}),
                ("Anna Schmidt", {"company": "Acme Corp", "email": "anna@ACME.com", "phone": "+49 (30) 1234-5678"}),
                ("Bruno Keller", {"company": "acme corp", "email": "bruno@acme.com", "phone": "0049 30 98765432"}),
                ("Carla Diaz", {"company": "Globex", "email": "carla@acme.de", "phone": "+34 91 555 0199"}),
                ("Dora Acmeton", {"email": "dora@initech.example", "phone": "555-0100"}),
            ]
        }
    return made


def _names(app, query: str) -> list[str]:
    with app.uow() as uow:
        return [hit.name for hit in search.search_customers(uow.session, query)]


def test_company_name_finds_its_people_after_the_names_that_match(chat, app, people):
    rep = chat.user("Rita Rep", Role.SALES)
    listed = chat.say(rep, "/customer acme").reply
    assert listed.title == "4 customers match 'acme'"
    # The account named Acme first, then a name with a word starting "acme", then its people.
    assert [(i.text, i.detail) for i in listed.sections[0].items] == [
        (f"Acme Corp (#{people['Acme Corp']})", "name starts with it"),
        (f"Dora Acmeton (#{people['Dora Acmeton']})", "word match"),
        (f"Anna Schmidt (#{people['Anna Schmidt']})", "company"),
        (f"Bruno Keller (#{people['Bruno Keller']})", "company"),
    ]
    # A company nobody is named after: its one person's card.
    assert chat.say(rep, "/customer globex").reply.title == "Carla Diaz"
    assert _names(app, "Glob") == ["Carla Diaz"]
    assert _names(app, "initech") == []


def test_email_domain_finds_everyone_there(chat, app, people):
    rep = chat.user("Rita Rep", Role.SALES)
    listed = chat.say(rep, "/customer @acme.com").reply
    assert listed.title == "2 customers match '@acme.com'"
    assert [i.detail for i in listed.sections[0].items] == ["email domain", "email domain"]
    assert _names(app, "@ACME.COM") == ["Anna Schmidt", "Bruno Keller"]
    # One at the domain: the card. Without a dot, every domain starting with it.
    assert chat.say(rep, "/customer @acme.de").reply.title == "Carla Diaz"
    assert _names(app, "@acme") == ["Carla Diaz", "Anna Schmidt", "Bruno Keller"]
    assert _names(app, "@acme.co") == []
    assert chat.say(rep, "/customer @nowhere.example").reply.text == "No customer matches '@nowhere.example'."


@pytest.mark.parametrize("digits", ["12345678", "345678", "1234-5678", "30 12345678", "+49 30 12345678"])
def test_last_digits_of_a_phone_number_find_it_whatever_its_format(chat, app, people, digits):
    rep = chat.user("Rita Rep", Role.SALES)
    card = chat.say(rep, f"/customer {digits}").reply
    assert card.title == "Anna Schmidt"


def test_phone_suffix_is_a_suffix_not_a_substring(app, people):
    assert _names(app, "98765432") == ["Bruno Keller"]
    assert _names(app, "5550199") == ["Carla Diaz"]
    assert _names(app, "876543") == []  # in Bruno's number, but not at its end
    assert _names(app, "234567") == []


def test_an_edited_phone_and_email_are_found_by_the_new_ones_only(chat, app, people):
    rep = chat.user("Rita Rep", Role.SALES)
    chat.say(rep, f'/customer edit #{people["Anna Schmidt"]} phone="+44 20 7946 0958" email=anna@umbrella.example')
    assert _names(app, "7946 0958") == ["Anna Schmidt"]
    assert _names(app, "@umbrella.example") == ["Anna Schmidt"]
    assert _names(app, "12345678") == []
    assert _names(app, "@acme.com") == ["Bruno Keller"]
    chat.say(rep, f"/customer edit #{people['Anna Schmidt']} phone= company=")
    assert _names(app, "7946 0958") == [] and "Anna Schmidt" not in _names(app, "acme")


def test_several_phone_suffix_matches_page_with_a_true_count(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        for i in range(12):
            customers.create_customer(uow, f"Line {i:02d}", {"phone": f"+1 {i:02d} 404242"})
    first = chat.say(rep, "/customer 04242").reply  # five digits: not a phone search
    assert first.text == "No customer matches '04242'."
    pages = [chat.say(rep, "/customer 404242").reply]
    pages.append(chat.say(rep, pages[0].buttons[0].command).reply)
    assert pages[0].title == "12 customers match '404242'"
    assert sorted(i.text.split(" (")[0] for p in pages for i in p.sections[0].items) == [
        f"Line {i:02d}" for i in range(12)
    ]


def test_an_erased_customer_leaves_no_phone_or_email_key_behind(app, people):
    from crm_core.services import erasure

    with app.uow() as uow:
        erasure.erase(uow, people["Anna Schmidt"], reason="asked")
        anna = uow.session.get(Customer, people["Anna Schmidt"])
        assert (anna.email_index, anna.phone_index, anna.phone_tail, anna.email_domain) == (None, None, None, None)
    assert _names(app, "12345678") == []
    assert _names(app, "@acme.com") == ["Bruno Keller"]
