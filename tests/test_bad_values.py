"""Values that must be refused with a clear message, through the real dispatcher on both databases:
custom field keys that clash with core fields, NUL bytes, country codes, platform identities, and
campaign templates, languages and times."""

from __future__ import annotations

import pytest

from bot.messages import Tone
from crm_core.models import Customer, CustomFieldDefinition, Role
from tests.support import count


@pytest.fixture
def admin(chat):
    return chat.user("Ada Admin", Role.ADMIN)


@pytest.mark.parametrize(
    "line, key",
    [
        ("/field new customer name text", "name"),
        ("/field new customer email text", "email"),
        ("/field new customer owner text", "owner"),
        ("/field new customer tags text", "tags"),
        ("/field new customer country text", "country"),
        ("/field new deal amount_cents number", "amount_cents"),
        ("/field new deal stage text", "stage"),
        ("/field new deal amount number", "amount"),
        ("/field new ticket subject text", "subject"),
    ],
)
def test_a_custom_field_may_not_shadow_a_core_field(chat, app, admin, line, key):
    reply = chat.say(admin, line).reply
    assert reply.tone is Tone.ERROR
    assert reply.text.startswith(f"{key!r} is a built-in field"), reply.text
    assert count(app, CustomFieldDefinition) == 0


def test_fields_of_other_entities_stay_free(chat, app, admin):
    # "subject" is a ticket column, not a customer one.
    assert chat.say(admin, "/field new customer subject text").reply.tone is Tone.SUCCESS


def test_the_name_is_given_once(chat, app, admin):
    reply = chat.say(admin, '/customer new "Name Clash" name=foo').reply
    assert reply.tone is Tone.ERROR
    assert reply.text == "The name is given twice: 'Name Clash' and 'foo'."
    assert count(app, Customer) == 0
