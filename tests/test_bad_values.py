"""Values that must be refused with a clear message, through the real dispatcher on both databases:
custom field keys that clash with core fields, NUL bytes, country codes, platform identities, and
campaign templates, languages and times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from bot.messages import Tone
from crm_core.models import Campaign, Customer, CustomFieldDefinition, Deal, Identity, Role, Ticket
from crm_core.services import customers, segments
from tests.support import count, rows

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


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


@pytest.mark.parametrize(
    "line",
    [
        '/customer new "a\x00b"',
        "/customer new Acme company=a\x00b",
        "/customer new Acme tags=a\x00b",
    ],
)
def test_a_nul_byte_is_refused_on_both_databases(chat, app, admin, line):
    reply = chat.say(admin, line).reply
    assert reply.tone is Tone.ERROR
    assert "control character" in reply.text, reply.text
    assert count(app, Customer) == 0


def test_a_nul_byte_in_a_deal_or_ticket_is_refused(chat, app, admin):
    with app.uow() as uow:
        customers.create_customer(uow, "Acme")
    for line in ("/deal new acme Big\x00deal", "/ticket new acme broken\x00printer"):
        reply = chat.say(admin, line).reply
        assert reply.tone is Tone.ERROR and "control character" in reply.text, reply.text
    assert count(app, Deal) == count(app, Ticket) == 0


@pytest.mark.parametrize("country, ok", [("XX", False), ("de", True), ("GB", True), ("UK", False), ("AQ", True)])
def test_country_is_an_iso_3166_code(chat, app, admin, country, ok):
    reply = chat.say(admin, f"/customer new Acme country={country}").reply
    if ok:
        assert reply.tone is Tone.SUCCESS, reply.text
        [customer] = rows(app, Customer)
        assert customer.country == country.upper()
    else:
        assert reply.tone is Tone.ERROR
        assert reply.text == f"{country!r} is not an ISO 3166 country code (e.g. DE, GB, US)."
        assert count(app, Customer) == 0


@pytest.mark.parametrize(
    "reference, message",
    [
        ("telegram:abc", "'abc' is not a Telegram id"),
        ("slack:hello", "'hello' is not a Slack id"),
        ("fax:123", "Unknown platform 'fax'"),
    ],
)
def test_role_checks_the_platform_identity(chat, app, admin, reference, message):
    reply = chat.say(admin, f"/role {reference} sales").reply
    assert reply.tone is Tone.ERROR
    assert reply.text.startswith(message), reply.text
    assert count(app, Identity) == 1  # the admin's own


def test_role_accepts_a_well_formed_identity(chat, app, admin):
    assert chat.say(admin, "/role telegram:12345 sales").reply.tone is Tone.SUCCESS


@pytest.mark.parametrize(
    "options, message",
    [
        ("template=digest at=now", "'digest' is not a campaign template"),
        ("template=campaign_announcement lang=fr at=now", "There is no campaign_announcement template in 'fr'"),
        ("template=campaign_announcement at=2020-01-01 10:00", "At=2020-01-01 10:00 is in the past"),
    ],
)
def test_campaign_values_are_checked(chat, app, admin, options, message):
    with app.uow() as uow:
        segments.create(uow, "s", "all", None)
    with time_machine.travel(NOW, tick=False):
        said = chat.say(admin, f"/campaign new x segment=s {options}")
    assert said.reply.tone is Tone.ERROR
    assert said.reply.text.startswith(message), said.reply.text
    assert count(app, Campaign) == 0


def test_campaign_languages_that_exist_are_accepted(chat, app, admin):
    with app.uow() as uow:
        segments.create(uow, "s", "all", None)
    with time_machine.travel(NOW, tick=False):
        for lang in ("auto", "en", "zh"):
            said = chat.say(admin, f"/campaign new c{lang} segment=s template=campaign_announcement lang={lang} at=now")
            assert said.reply.tone is Tone.SUCCESS, said.text


def test_the_shipped_country_list_is_complete():
    from crm_core.iso_countries import ISO_3166_ALPHA_2

    assert len(ISO_3166_ALPHA_2) == 249
    assert {"DE", "GB", "US", "CN", "SS", "BQ", "AX"} <= ISO_3166_ALPHA_2
    assert not {"UK", "EU", "XK", "XX"} & ISO_3166_ALPHA_2
