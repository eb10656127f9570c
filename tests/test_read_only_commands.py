"""Commands that only read (``read_only=True``: finding, showing, listing) on SQLite run in a reading
transaction beside the one writer instead of queueing for the write lock, and still use up their
delivery once; a command marked so that writes is refused, not half-written."""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from bot.args import rest
from bot.dispatch import AlreadyHandled, Dispatcher
from bot.messages import Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup, Router
from crm_core import inbox
from crm_core.models import Customer, FormSession, Interaction, Role
from crm_core.models.inbox import InboundEvent, InboxStatus
from crm_core.services import customers
from tests.support import Chat, count, rows


def _acme(app) -> int:
    with app.uow() as uow:
        return customers.create_customer(uow, "Acme Corp").id


def test_a_delivery_is_kept_while_a_reading_command_runs(app):
    """Before, every SQLite transaction began IMMEDIATE and held the one write lock to its end: a
    Slack delivery being kept before its ack waited behind a customer card being read (here the
    reading command waits for that write, so it would wait for itself until SQLite gave up)."""
    if not app.settings.is_sqlite:
        pytest.skip("PostgreSQL readers never hold up a writer")
    kept: list[object] = []
    reader = CommandGroup()

    @reader.command("peek", summary="reads while a delivery is kept", permission=Permission.HELP, read_only=True)
    def _peek(req, ctx) -> Reply:
        found = ctx.uow.session.scalar(sa.select(sa.func.count()).select_from(Customer))
        writer = threading.Thread(
            target=lambda: kept.append(inbox.receive(app.session_factory, "slack", "cmd:1", "{}"))
        )
        writer.start()
        writer.join(timeout=10)
        return Reply(text=f"{found} customers; delivery kept: {bool(kept)}")

    dispatcher = Dispatcher(
        Router([*app.plugins.command_groups, reader], app.router.permissions),
        app.session_factory,
        app.settings,
        app.plugins,
    )
    reply = dispatcher.handle(Request(origin=Chat(app).stranger(), text="/peek"))
    assert reply.text == "0 customers; delivery kept: True"
    assert [(r.key, r.status) for r in rows(app, InboundEvent)] == [("cmd:1", InboxStatus.PENDING)]


def test_a_read_command_uses_up_its_delivery_once_and_leaves_a_form(app, chat):
    customer_id = _acme(app)
    rep = chat.user("Rita", Role.SALES)
    # A form in progress: typing a command leaves it, a reading command too.
    form = chat.say(rep, "/note", can_ask=True).reply.form
    assert form is not None
    app.dispatcher.ask(rep, form)
    assert count(app, FormSession) == 1
    card = chat.say(rep, f"/customer #{customer_id}", inbox_key="cmd:1").reply
    assert card.title.startswith("Acme Corp")
    with pytest.raises(AlreadyHandled):
        chat.say(rep, f"/customer #{customer_id}", inbox_key="cmd:1")
    assert [r.status for r in rows(app, InboundEvent)] == [InboxStatus.DONE]
    assert count(app, FormSession) == 0


def test_a_read_only_command_that_writes_is_refused_and_writes_nothing(app, caplog):
    """The mark is a promise the database keeps on SQLite: a handler marked read-only that writes
    gets the internal-error answer (with its reference logged), never a half-written row."""
    if not app.settings.is_sqlite:
        pytest.skip("the reading transaction is SQLite's")
    customer_id = _acme(app)
    liar = CommandGroup()

    @liar.command(
        "peek", summary="claims to only read", permission=Permission.HELP, params=[rest("text")], read_only=True
    )
    def _peek(req, ctx) -> Reply:
        ctx.uow.session.add(Interaction(customer_id=customer_id, kind="note", text=req.args["text"]))
        ctx.uow.flush()
        return Reply(text="written")

    dispatcher = Dispatcher(
        Router([*app.plugins.command_groups, liar], app.router.permissions),
        app.session_factory,
        app.settings,
        app.plugins,
    )
    origin = Chat(app).stranger()
    with caplog.at_level(logging.ERROR, logger="chatcrm.dispatch"):
        reply = dispatcher.handle(Request(origin=origin, text="/peek hello"))
    assert reply.tone is Tone.ERROR and "(ref " in reply.text
    ref = reply.text.split("(ref ")[1].split(")")[0]
    record = next(r for r in caplog.records if f"ref={ref}" in r.getMessage())
    assert "readonly" in str(record.exc_info[1]).lower()
    assert count(app, Interaction) == 0
    # The connection that refused the write writes again for the next writing command.
    rep = Chat(app).user("Rita", Role.SALES)
    assert "Acme" in Chat(app).say(rep, f'/note #{customer_id} "Called them"').text
    assert count(app, Interaction) == 1
    assert count(app, Customer, Customer.name == "Acme Corp") == 1


def test_read_only_marks_are_on_reading_commands_only(app):
    marked = sorted(c.name for c in app.router.commands if c.read_only)
    assert "customer" in marked and "ticket list" in marked and "deal list" in marked
    # None of them is a command that changes something.
    assert not [name for name in marked if name.split()[-1] in {"new", "edit", "set", "delete", "start", "merge"}]
