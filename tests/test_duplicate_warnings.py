"""Bug 9: a new customer with another's name or phone is created, with a warning that links to
the existing record (a duplicate email stays refused); on both databases."""

from __future__ import annotations

from bot.messages import Tone
from crm_core.models import Customer, Role
from tests.support import count


def test_same_name_or_phone_warns_and_links_to_the_existing_customer(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    chat.say(rep, '/customer new "Acme Corp" phone="+49 30 1234567" email=buy@acme.example')

    same_name = chat.say(rep, '/customer new "ACME corp."').reply
    assert same_name.tone is Tone.WARNING and same_name.title == "ACME corp."
    assert "Possible duplicate of Acme Corp (#1, same name)" in same_name.text
    assert same_name.buttons[0].label == "Open #1" and same_name.buttons[0].command == "/customer #1"

    same_phone = chat.say(rep, '/customer new "Switchboard" phone="030 1234567"').reply
    assert same_phone.tone is Tone.WARNING and "Acme Corp (#1, same phone)" in same_phone.text

    # An edit that gives a customer someone's name or number warns the same way.
    edited = chat.say(rep, "/customer edit #3 name=Acme-Corp").reply
    assert "Acme Corp (#1, same name and phone)" in edited.text and "ACME corp. (#2, same name)" in edited.text

    fresh = chat.say(rep, '/customer new "Beta GmbH" phone="+49 40 555"').reply
    assert fresh.tone is Tone.SUCCESS and "duplicate" not in (fresh.text or "")
    assert count(app, Customer) == 4

    email = chat.say(rep, "/customer new Other email=BUY@acme.example").reply
    assert email.tone is Tone.ERROR and count(app, Customer) == 4
