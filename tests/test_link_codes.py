"""/link through the real dispatcher: one-time codes that expire, work once, are stored only as a
hash, are refused where others can read them, and pair a chat account with a CRM user."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import time_machine

from bot.messages import Tone
from crm_core.models import Identity, LinkCode, Role
from crm_core.services import users

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _telegram(chat, external_id: str = "4242", private: bool = True):
    origin = chat.stranger(external_id, platform="telegram")
    return replace(origin, is_private=private, conversation=external_id if private else "-100123")


def _who(app, external_id: str = "4242") -> str | None:
    with app.uow() as uow:
        user = users.user_for_identity(uow, users.PlatformId("telegram", external_id))
        return user.name if user else None


def test_codes_look_typable_and_only_their_hash_is_kept(chat, app):
    maria = chat.user("Maria", Role.SUPPORT)
    code = chat.say(maria, "/link").reply.text
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ2-9]{4}-[BCDFGHJKLMNPQRSTVWXZ2-9]{4}", code)
    with app.uow() as uow:
        [row] = uow.session.scalars(sa.select(LinkCode)).all()
        assert code.replace("-", "") not in row.code_hash and len(row.code_hash) == 64


def test_a_code_expires_after_ten_minutes(chat, app):
    maria = chat.user("Maria", Role.SUPPORT)
    with time_machine.travel(T0, tick=False):
        late = chat.say(maria, "/link").reply.text
    with time_machine.travel(T0 + timedelta(minutes=10, seconds=1), tick=False):
        reply = chat.say(_telegram(chat), f"/link {late}").reply
    assert reply.tone is Tone.ERROR
    assert reply.text == "That code has expired (codes last 10 minutes); ask for a new one with /link."
    assert _who(app) is None
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        fresh = chat.say(maria, "/link").reply.text
    with time_machine.travel(T0 + timedelta(minutes=29), tick=False):
        # Typed in lower case and without the dash: still the same code.
        assert chat.say(_telegram(chat), f"/link {fresh.replace('-', '').lower()}").reply.tone is Tone.SUCCESS
    assert _who(app) == "Maria"


def test_a_code_works_once_and_a_newer_one_replaces_it(chat, app):
    maria = chat.user("Maria", Role.SUPPORT)
    first = chat.say(maria, "/link").reply.text
    second = chat.say(maria, "/link").reply.text
    assert (
        chat.say(_telegram(chat), f"/link {first}").reply.text
        == "That code has already been used; ask for a new one with /link."
    )
    assert chat.say(_telegram(chat), f"/link {second}").reply.tone is Tone.SUCCESS
    assert (
        chat.say(_telegram(chat, "5555"), f"/link {second}").reply.text
        == "That code has already been used; ask for a new one with /link."
    )
    assert (
        chat.say(_telegram(chat, "5555"), "/link BCDF-GHJK").reply.text
        == "That code is not valid; check it, or ask for a new one with /link."
    )
    assert (_who(app), _who(app, "5555")) == ("Maria", None)


def test_admins_make_codes_for_others_and_nobody_else_does(chat, app):
    admin = chat.user("Ada Admin", Role.ADMIN)
    rep = chat.user("Rita Rep", Role.SALES)
    chat.user("Maria Support", Role.SUPPORT)
    assert (
        chat.say(rep, "/link maria").reply.text
        == "Only admins can make link codes for other users; use /link on its own for yours."
    )
    issued = chat.say(admin, "/link maria").reply
    assert issued.title == "Link code for Maria Support"
    linked = chat.say(_telegram(chat), f"/link {issued.text}").reply
    assert linked.text == "Linked: this telegram account now acts as Maria Support (role support)."
    assert linked.private


def test_codes_are_neither_given_nor_taken_where_others_read(chat, app):
    maria = chat.user("Maria", Role.SUPPORT)
    in_channel = replace(maria, is_private=False, conversation="C-general")
    assert (
        chat.say(in_channel, "/link").reply.text == "Ask me for a link code in a private chat with the bot, not here."
    )
    code = chat.say(maria, "/link").reply.text
    posted = chat.say(_telegram(chat, private=False), f"/link {code}").reply
    assert posted.text.startswith("Send link codes to me in a private chat, not here. Others may have seen this one")
    assert chat.say(_telegram(chat), f"/link {code}").reply.tone is Tone.ERROR
    assert _who(app) is None


def test_someone_unknown_gets_no_code(chat):
    reply = chat.say(_telegram(chat), "/link").reply
    assert reply.text.startswith("The CRM does not know you yet, so there is nothing to link to")


def test_linking_moves_an_account_from_a_placeholder_user(chat, app):
    with app.uow() as uow:
        users.ensure_user(uow, users.PlatformId("telegram", "4242"), display_name="telegram:4242")
    code = chat.say(chat.user("Maria", Role.SUPPORT), "/link").reply.text
    chat.say(_telegram(chat), f"/link {code}")
    assert _who(app) == "Maria"
    with app.uow() as uow:
        assert (
            uow.session.scalar(
                sa.select(sa.func.count()).select_from(Identity).where(Identity.platform == "telegram")
            )
            == 1
        )
