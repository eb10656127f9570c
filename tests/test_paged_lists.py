"""Long lists page through everything: true totals over the whole match, a More button whose
command asks for the next page (read on demand), and /more in the console; on both databases."""

from __future__ import annotations

import io
from datetime import timedelta

from bot.adapters.console.adapter import run_console
from bot.messages import Reply
from crm_core import clock
from crm_core.models import Role, Ticket
from crm_core.services import customers, deals, followups, tickets, users
from tests.support import Chat
from tests.telegram_rig import SUPPORT_CHAT


def _pages(chat: Chat, origin, line: str) -> list[Reply]:
    """The reply to ``line``, then the reply to each More button in turn (as a press runs it)."""
    pages = [chat.say(origin, line).reply]
    while more := [b for b in pages[-1].buttons if b.next_page]:
        assert len(pages) < 20, "the More buttons never end"
        pages.append(chat.say(origin, more[0].command).reply)
    return pages


def _acme_with_deals(app, n: int) -> int:
    with app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
        for i in range(1, n + 1):
            deals.create_deal(uow, acme, f"Deal {i:03d}", amount_cents=100_00 * i)
    return acme


def test_deal_list_pages_through_every_deal_and_totals_all_of_them(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    _acme_with_deals(app, 55)
    pages = _pages(chat, rep, "/deal list all")

    euros = sum(100 * i for i in range(1, 56))  # €154,000.00 over all 55, not the first page's
    assert [p.footer for p in pages] == [
        f"1–20 of 55 deals · €{euros:,}.00 in total",
        f"21–40 of 55 deals · €{euros:,}.00 in total",
        f"41–55 of 55 deals · €{euros:,}.00 in total",
    ]
    assert [b.command for p in pages for b in p.buttons] == ["/deal list all page=2", "/deal list all page=3"]
    listed = [item.text for p in pages for item in p.sections[0].items]
    assert listed == [f"#{i} Deal {i:03d} · Acme Corp" for i in range(1, 56)]
    # Filters stay on every page; a page past the end says so.
    assert chat.say(rep, "/deal list acme stage=lead page=3").reply.footer.startswith("41–55 of 55")
    past = chat.say(rep, "/deal list all page=9").reply
    assert past.sections[0].items == () and past.footer.startswith("page 9 is past the end: 55 deals")


def test_ticket_list_pages_and_counts_every_overdue_ticket(chat, app):
    agent = chat.user("Sam Support", Role.SUPPORT)
    with app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
        for i in range(1, 26):
            tickets.create_ticket(uow, acme, f"Problem {i:02d}")
        # The last five opened are long past their resolution time.
        for ticket in uow.session.query(Ticket).filter(Ticket.id > 20):
            ticket.resolve_due_at = clock.utcnow() - timedelta(days=1)
    pages = _pages(chat, agent, "/ticket list open")
    assert [p.footer for p in pages] == ["1–20 of 25 ticket(s) · 5 overdue", "21–25 of 25 ticket(s) · 5 overdue"]
    assert sorted(int(item.text.split()[0][1:]) for p in pages for item in p.sections[0].items) == list(range(1, 26))


def test_customer_search_pages_through_every_match(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        for i in range(1, 26):
            customers.create_customer(uow, f"Alpha {i:02d}")
        customers.create_customer(uow, "Beta")
    pages = _pages(chat, rep, "/customer alp")
    assert [p.title for p in pages] == ["25 customers match 'alp'"] * 3
    assert [len(p.sections[0].items) for p in pages] == [10, 10, 5]
    names = sorted(item.text.split(" (")[0] for p in pages for item in p.sections[0].items)
    assert names == [f"Alpha {i:02d}" for i in range(1, 26)]
    assert pages[0].buttons[0].command == "/customer alp page=2"


def test_followup_list_pages(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
        me = users.user_for_identity(uow, users.PlatformId("console", "rita.rep")).id
        for i in range(1, 24):
            followups.create_followup(uow, acme, me, clock.utcnow() + timedelta(hours=i), f"call {i}")
    pages = _pages(chat, rep, "/followup list")
    assert [p.footer.split(" · ")[0] for p in pages] == ["1–20 of 23 open", "21–23 of 23 open"]


def test_console_more_shows_the_next_page_of_the_last_list(app):
    _acme_with_deals(app, 45)
    out = io.StringIO()
    run_console(app, stdin=io.StringIO("/more\n/deal list all\n/more\n/deal 1\n/more\n/more\n"), stdout=out)
    text = out.getvalue()
    assert text.startswith("Nothing more to show")
    assert "[More: /more]" in text
    for i in (1, 20, 21, 40, 41, 45):
        assert f"#{i} Deal {i:03d}" in text
    # /more continues the list even after another command, and stops at the end.
    assert text.count("of 45 deals") == 3
    assert text.rstrip().endswith("/more continues the last list that had a More button.")


def test_telegram_more_button_shows_the_next_page(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    _acme_with_deals(rig.app, 25)
    sam = rig.staff(900, "Sam Sales", Role.SALES)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/deal list all"))
    first = tg.last_sent(SUPPORT_CHAT)
    assert "1–20 of 25 deals" in first.text and "Deal 021" not in first.text
    rig.send(tg.press(sam, first, "More"))
    second = tg.last_sent(SUPPORT_CHAT)
    assert "21–25 of 25 deals" in second.text and "Deal 021" in second.text
    assert "More" not in [b["text"] for b in second.buttons]
