"""The dispatcher's promises: roles deny by default, user errors get usage, internal errors get a
reference that is logged, over-long input is refused, and a failed command writes nothing."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from bot.args import rest
from bot.dispatch import Dispatcher
from bot.messages import Reply, Tone
from bot.roles import Permission
from bot.router import CommandGroup, Router
from crm_core.models import AuditEntry, Customer, Role
from crm_core.services import customers
from tests.support import TEST_SECRET_KEY, Chat


def test_unknown_user_gets_only_help_and_stop(chat):
    stranger = chat.stranger()
    denied = chat.say(stranger, "/customer acme").reply
    assert denied.tone is Tone.ERROR
    assert denied.text == "You can't use /customer yet: ask a chatcrm admin to give you a role (/role)."
    help_reply = chat.say(stranger, "/help").reply
    assert [i.text for i in help_reply.sections[0].items] == [
        "/help [command]",
        "/lang [zh | en | auto]",
        "/link [code | user]",
        "/stop",
        "/whoami",
    ]
    assert "ask a chatcrm admin" in help_reply.footer.lower()


def test_help_lists_what_the_role_may_use(chat):
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    admin = chat.user("Ada Admin", Role.ADMIN)
    viewer_cmds = {
        i.text.split()[0]
        + (" " + i.text.split()[1] if len(i.text.split()) > 1 and not i.text.split()[1].startswith(("<", "[")) else "")
        for i in chat.say(viewer, "/help").reply.sections[0].items
    }
    assert "/customer new" not in viewer_cmds and "/role" not in viewer_cmds
    assert {"/customer", "/deal", "/deal list", "/help"} <= viewer_cmds
    admin_usages = [i.text for i in chat.say(admin, "/help").reply.sections[0].items]
    assert "/role <user> <admin|manager|sales|support|viewer|none>" in admin_usages
    assert (
        "/customer new <name> [email=…] [phone=…] [company=…] [country=DE] [language=de] [timezone=…] [owner=…] "
        "[tags=a,b] [field=value …]" in admin_usages
    )


def test_help_on_one_command(chat):
    rep = chat.user("Rita", Role.SALES)
    reply = chat.say(rep, "/help deal").reply
    assert [s.title for s in reply.sections] == [
        "/deal <id>",
        "/deal edit <id> [title=…] [amount=…] [close=YYYY-MM-DD] [owner=me|<user>|nobody] [field=value …]",
        "/deal list [mine|open|overdue|all|<customer>] [stage=…] [page=…]",
        "/deal new <customer> <title> [amount=…] [close=YYYY-MM-DD] [stage=…] [field=value …]",
        "/deal stage <id> <lead|qualified|proposal|negotiation|won|lost> [reason]",
    ]


def test_viewer_cannot_write(chat, app):
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    reply = chat.say(viewer, "/customer new Sneaky").reply
    assert reply.text == "Your role (viewer) can't use /customer new. Ask an admin if you need it."
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_every_permission_belongs_to_admin_and_the_table_denies_by_default(app):
    table = app.router.permissions
    assert table.granted(Role.ADMIN) >= {p.value for p in Permission}
    # Someone unknown may ask for help, see who they are and stop marketing messages to themselves, nothing
    # else; a customer the same, except that they have no CRM account to look at.
    assert table.granted(None) == {Permission.HELP, Permission.ACCOUNT, Permission.OPT_OUT}
    assert table.granted(Role.CUSTOMER) == {Permission.HELP, Permission.OPT_OUT}
    for command in app.router.commands:
        assert str(command.permission) in table.names(), command.name


def test_unknown_command_answers_with_help(chat):
    rep = chat.user("Rita", Role.SALES)
    reply = chat.say(rep, "/frobnicate now").reply
    assert reply.title == "I don't know '/frobnicate'. Here is what you can use:"
    assert any(i.text.startswith("/customer") for i in reply.sections[0].items)


def test_a_group_of_commands_alone_answers_with_that_groups_help(chat):
    manager = chat.user("Mia Manager", Role.MANAGER)
    reply = chat.say(manager, "/digest").reply
    assert reply.title == "'/digest' needs one more word. Here is what it can do:"
    assert reply.tone is Tone.WARNING
    assert [s.title for s in reply.sections] == [
        "/digest list",
        "/digest now [daily|weekly]",
        "/digest subscribe daily|weekly [HH:MM] [timezone] [weekday]",
        "/digest unsubscribe [daily|weekly]",
    ]
    # The same through the umbrella command, and in any case.
    assert chat.say(manager, "/crm digest").reply.title == reply.title
    assert chat.say(manager, "/DIGEST").reply.title == reply.title


def test_an_unknown_word_after_a_group_is_named_with_the_groups_help(chat):
    rep = chat.user("Rita", Role.SALES)
    reply = chat.say(rep, "/export customers").reply
    assert reply.title == "'/export' has no 'customers'. Here is what it can do:"
    assert [s.title for s in reply.sections] == ["/export segment <name> [xlsx|csv]"]
    # An argument typed where the subcommand goes is named the same way.
    manager = chat.user("Mia Manager", Role.MANAGER)
    assert chat.say(manager, "/digest daily").reply.title == "'/digest' has no 'daily'. Here is what it can do:"


def test_a_groups_help_lists_only_what_the_role_may_use(chat):
    rep = chat.user("Rita", Role.SALES)
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    assert [s.title for s in chat.say(rep, "/field").reply.sections] == ["/field list"]
    titles = [s.title.split(" <")[0] for s in chat.say(rep, "/campaign").reply.sections]
    # A sales rep drafts and checks campaigns; starting, pausing and cancelling are for managers.
    assert titles == [
        "/campaign list",
        "/campaign new",
        "/campaign preview",
        "/campaign status",
        "/campaign test",
    ]
    assert [s.title for s in chat.say(viewer, "/consent").reply.sections] == ["/consent show <customer>"]


def test_a_group_the_role_may_not_use_is_refused_as_its_commands_are(chat):
    rep = chat.user("Rita", Role.SALES)
    reply = chat.say(rep, "/webhook").reply
    assert reply.tone is Tone.ERROR
    assert reply.text == "Your role (sales) can't use /webhook. Ask an admin if you need it."
    stranger = chat.stranger()
    assert chat.say(stranger, "/digest").reply.text == (
        "You can't use /digest yet: ask a chatcrm admin to give you a role (/role)."
    )


def test_umbrella_command(chat, app):
    rep = chat.user("Rita", Role.SALES)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    assert chat.say(rep, "/crm customer acme").reply.title == "Acme Corp"
    assert chat.say(rep, "/crm").reply.title == "chatcrm commands"


def test_input_over_4000_characters_is_refused(chat, app):
    rep = chat.user("Rita", Role.SALES)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    reply = chat.say(rep, "/note acme " + "x" * 4000).reply
    assert reply.text == "That is too long (4,011 characters; the limit is 4,000). Please shorten it."
    with app.uow() as uow:
        assert (
            uow.session.scalar(
                sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.entity_type == "interactions")
            )
            == 0
        )


def test_unclosed_quote_is_a_user_error(chat):
    rep = chat.user("Rita", Role.SALES)
    reply = chat.say(rep, '/customer new "Acme').reply
    assert reply.text == "I could not read that command: a quote opened at character 15 is never closed."


def test_role_command_grants_and_creates_platform_users(chat, app):
    admin = chat.user("Ada Admin", Role.ADMIN)
    assert chat.say(admin, "/role slack:U777 sales").reply.text.endswith("is now sales.")
    newcomer = chat.stranger("U777")
    assert chat.say(newcomer, "/customer acme").reply.text == "No customer matches 'acme'."
    assert chat.say(admin, "/role nobody sales").reply.text == "No user called 'nobody'."
    assert (
        chat.say(admin, "/role slack:U777 wizard").reply.footer
        == "Usage: /role <user> <admin|manager|sales|support|viewer|none>"
    )
    assert (
        chat.say(admin, '/role "Ada Admin" viewer').reply.text
        == "You can't take admin away from yourself; ask another admin."
    )


def test_bootstrap_admins_from_settings(database_url):
    from bot.bootstrap import build_app
    from bot.settings import Settings

    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "CHATCRM_SECRET_KEY": TEST_SECRET_KEY,
            "CHATCRM_ADMINS": "slack:UADMIN, telegram:4242",
        }
    )
    app = build_app(settings)
    try:
        chat = Chat(app)
        for origin in (chat.stranger("UADMIN"), chat.stranger("4242", platform="telegram")):
            assert chat.say(origin, "/whoami").reply.fields[0].value == "admin"
    finally:
        app.close()
    # A second start changes nothing.
    app = build_app(settings)
    try:
        with app.uow() as uow:
            assert uow.session.scalar(sa.text("SELECT count(*) FROM users")) == 2
    finally:
        app.close()


def test_unexpected_error_gets_a_reference_logs_it_and_rolls_back(app, caplog):
    boom = CommandGroup()

    @boom.command("boom", summary="fails half way", permission=Permission.HELP, params=[rest("name")])
    def _boom(req, ctx) -> Reply:
        customers.create_customer(ctx.uow, req.args["name"])
        ctx.uow.flush()
        raise RuntimeError("disk on fire")

    dispatcher = Dispatcher(
        Router([*app.plugins.command_groups, boom], app.router.permissions),
        app.session_factory,
        app.settings,
        app.plugins,
    )
    chat = Chat(app)
    origin = chat.stranger()
    with caplog.at_level(logging.ERROR, logger="chatcrm.dispatch"):
        from bot.messages import Request

        reply = dispatcher.handle(Request(origin=origin, text="/boom Half Written Ltd"))
    assert reply.tone is Tone.ERROR
    ref = reply.text.split("(ref ")[1].split(")")[0]
    assert len(ref) == 8
    record = next(r for r in caplog.records if f"ref={ref}" in r.getMessage())
    assert record.exc_info[1].args == ("disk on fire",)
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_leaving_a_form_forgets_the_form_session_the_transaction_holds(app):
    """``conversation.cancel`` deletes the person's form in progress with one DELETE; a form session
    this transaction read before is marked deleted in the session too (from the ids the DELETE
    returns), so nothing later writes to the row that is gone."""
    from sqlalchemy import inspect

    from bot import conversation
    from bot.messages import Form, FormInput, Origin

    origin = Origin("console", "ada", "console")
    form = Form("New note", "/note", (FormInput("text", "Text"),))
    with app.uow() as uow:
        conversation.start(uow, origin, form)
    with app.uow() as uow:
        held = conversation.current(uow, origin)
        assert held is not None
        assert conversation.cancel(uow, origin) is True
        assert inspect(held).deleted or held not in uow.session
        assert conversation.current(uow, origin) is None
