"""Ownership: reps change only the customers, deals and tickets they own (a ticket: assigned to them)
or that nobody owns; managers and admins change everything; CHATCRM_EDIT_SCOPE=all lifts the rule;
reading is never restricted. Checked as a matrix role × owner × entity through the real dispatcher,
and through the REST API, on both databases."""

from __future__ import annotations

import httpx
import pytest

from bot.api.app import PREFIX
from bot.bootstrap import build_app
from bot.messages import Tone
from bot.settings import Settings, SettingsError
from bot.web import build_web_app
from crm_core.actor import EditScope
from crm_core.models import Customer, Deal, Role, Ticket
from crm_core.services import customers, deals, tickets, users
from tests.fakes.servers import serve_asgi
from tests.support import TEST_SECRET_KEY, Chat, rows

# Role -> the entities its permissions let it write at all (the rule narrows that down).
WRITES = {
    Role.SALES: ("customer", "deal"),
    Role.SUPPORT: ("customer", "ticket"),
    Role.MANAGER: ("customer", "deal", "ticket"),
    Role.ADMIN: ("customer", "deal", "ticket"),
}
EDITS = {
    "customer": "/customer edit #{id} country=DE",
    "deal": "/deal edit {id} amount=5000",
    "ticket": "/ticket edit {id} subject=Changed",
}


def _user_id(app, name: str) -> int:
    with app.uow() as uow:
        user = users.user_for_identity(uow, users.PlatformId("console", name.lower().replace(" ", ".")))
        assert user is not None
        return user.id


def _record(app, entity: str, owner_id: int | None, n: int) -> int:
    """A fresh customer, deal or ticket owned by (assigned to) ``owner_id``, or by nobody."""
    with app.uow() as uow:
        customer = customers.create_customer(uow, f"Customer {n}")
        if entity == "customer":
            customer.owner_id = owner_id
            return customer.id
        if entity == "deal":
            deal = deals.create_deal(uow, customer.id, f"Deal {n}")
            deal.owner_id = owner_id
            return deal.id
        ticket = tickets.create_ticket(uow, customer.id, f"Ticket {n}")
        ticket.assignee_id = owner_id
        return ticket.id


def _changed(app, entity: str, record_id: int) -> bool:
    model = {"customer": Customer, "deal": Deal, "ticket": Ticket}[entity]
    [row] = rows(app, model, model.id == record_id)
    return {"customer": lambda: row.country == "DE", "deal": lambda: row.amount_cents == 500_000}.get(
        entity, lambda: row.subject == "Changed"
    )()


def test_permission_matrix(chat, app):
    olga = chat.user("Olga Other", Role.SALES)
    assert olga
    other_id = _user_id(app, "Olga Other")
    seen = []
    n = 0
    for role, entities in WRITES.items():
        name = f"Actor {role.value}"
        me = chat.user(name, role)
        my_id = _user_id(app, name)
        for entity in entities:
            for owner, owner_id in (("own", my_id), ("other", other_id), ("unassigned", None)):
                n += 1
                record_id = _record(app, entity, owner_id, n)
                reply = chat.say(me, EDITS[entity].format(id=record_id)).reply
                allowed = owner != "other" or role in (Role.MANAGER, Role.ADMIN)
                seen.append((role.value, entity, owner, _changed(app, entity, record_id)))
                assert _changed(app, entity, record_id) is allowed, (role, entity, owner, reply.text)
                if not allowed:
                    what = {"customer": f"Customer {n}", "deal": f"Deal #{record_id} (Deal {n})"}.get(
                        entity, f"Ticket #{record_id}"
                    )
                    verb = "assigned to" if entity == "ticket" else "owned by"
                    assert (reply.tone, reply.text) == (
                        Tone.ERROR,
                        f"{what} is {verb} Olga Other; ask them or a manager.",
                    )
                    # Reading stays open.
                    show = {"customer": f"/customer #{record_id}", "deal": f"/deal {record_id}"}.get(
                        entity, f"/ticket {record_id}"
                    )
                    assert chat.say(me, show).reply.tone is not Tone.ERROR
    refused = [(r, e) for r, e, o, changed in seen if not changed]
    assert refused == [("sales", "customer"), ("sales", "deal"), ("support", "customer"), ("support", "ticket")]


def test_every_change_of_another_reps_deal_and_ticket_is_refused(chat, app):
    chat.user("Olga Other", Role.MANAGER)
    rita = chat.user("Rita Rep", Role.SALES)
    sam = chat.user("Sam Support", Role.SUPPORT)
    olga_id = _user_id(app, "Olga Other")
    deal_id = _record(app, "deal", olga_id, 1)
    ticket_id = _record(app, "ticket", olga_id, 2)
    for who, line in (
        (rita, f"/deal stage {deal_id} won"),
        (sam, f"/ticket status {ticket_id} resolved"),
        (sam, f"/ticket assign {ticket_id} me"),
    ):
        assert "ask them or a manager" in chat.say(who, line).text
    # Taking an unassigned ticket is fine; after that it is Sam's to work.
    free = _record(app, "ticket", None, 3)
    assert chat.say(sam, f"/ticket assign {free} me").reply.tone is Tone.SUCCESS
    assert chat.say(sam, f"/ticket status {free} resolved").reply.tone is Tone.SUCCESS


def test_edit_scope_all_keeps_the_old_behaviour(database_url):
    assert (
        Settings.from_env({"DATABASE_URL": database_url, "CHATCRM_SECRET_KEY": TEST_SECRET_KEY}).edit_scope
        is EditScope.OWN
    )
    with pytest.raises(SettingsError, match="CHATCRM_EDIT_SCOPE='mine' is not own or all"):
        Settings.from_env({"CHATCRM_EDIT_SCOPE": "mine"})
    app = build_app(
        Settings.from_env(
            {"DATABASE_URL": database_url, "CHATCRM_SECRET_KEY": TEST_SECRET_KEY, "CHATCRM_EDIT_SCOPE": "all"}
        )
    )
    try:
        chat = Chat(app)
        chat.user("Olga Other", Role.SALES)
        rita = chat.user("Rita Rep", Role.SALES)
        customer_id = _record(app, "customer", _user_id(app, "Olga Other"), 1)
        assert chat.say(rita, f"/customer edit #{customer_id} country=DE").reply.tone is Tone.SUCCESS
    finally:
        app.close()


def test_the_rest_api_meets_the_same_rule(app, chat):
    chat.user("Olga Other", Role.SALES)
    rita = chat.user("Rita Rep", Role.SALES)
    secret = chat.say(rita, "/token new it").reply.text
    headers = {"Authorization": f"Bearer {secret}"}
    theirs = _record(app, "customer", _user_id(app, "Olga Other"), 1)
    free = _record(app, "customer", None, 2)
    with serve_asgi(build_web_app(app, [])) as base_url, httpx.Client(base_url=base_url + PREFIX) as http:
        refused = http.patch(f"/customers/{theirs}", json={"country": "DE"}, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "Customer 1 is owned by Olga Other; ask them or a manager"
        assert http.get(f"/customers/{theirs}", headers=headers).status_code == 200
        assert http.patch(f"/customers/{free}", json={"country": "DE"}, headers=headers).status_code == 200
