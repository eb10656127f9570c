"""/history <customer> [kind=…] [since=…]: the whole interaction log, newest first, a page at a time
with a More button (Slack, Telegram) or /more (console); on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from crm_core import clock
from crm_core.models import InteractionKind, Role
from crm_core.services import customers, interactions
from tests.support import Chat
from tests.telegram_rig import SUPPORT_CHAT

KINDS = [InteractionKind.NOTE, InteractionKind.CALL, InteractionKind.EMAIL]


def _acme_with_history(app, n: int) -> int:
    """``n`` interactions on Acme, entry i logged i days ago, kinds in turn note, call, email."""
    now = clock.utcnow()
    with app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
        customers.create_customer(uow, "Globex")
        for i in range(n):
            interactions.log_interaction(
                uow, acme, f"entry {i:02d}", kind=KINDS[i % 3], occurred_at=now - timedelta(days=i, minutes=1)
            )
    return acme


def _pages(chat: Chat, origin, line: str):
    pages = [chat.say(origin, line).reply]
    while more := [b for b in pages[-1].buttons if b.next_page]:
        assert len(pages) < 10, "the More buttons never end"
        pages.append(chat.say(origin, more[0].command).reply)
    return pages


def _entries(pages) -> list[str]:
    return [item.text for page in pages for item in page.sections[0].items]


def test_history_pages_through_every_interaction_newest_first(chat, app):
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    acme = _acme_with_history(app, 45)
    pages = _pages(chat, viewer, "/history acme")
    assert [p.title for p in pages] == [f"History of Acme Corp (#{acme})"] * 3
    assert [p.footer for p in pages] == [
        "1–20 of 45 interactions",
        "21–40 of 45 interactions",
        "41–45 of 45 interactions",
    ]
    assert _entries(pages) == [f"entry {i:02d}" for i in range(45)]
    assert pages[0].buttons[0].command == "/history acme page=2"
    assert "call · " in pages[0].sections[0].items[1].detail
    # Another customer's history is theirs alone.
    assert chat.say(viewer, "/history globex").reply.sections[0].empty == "Nothing logged."


@time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False)
def test_history_narrowed_by_kind_and_since(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    _acme_with_history(app, 45)
    calls = _pages(chat, rep, "/history acme kind=call")
    assert _entries(calls) == [f"entry {i:02d}" for i in range(1, 45, 3)]
    assert calls[0].footer == "15 interactions · call"
    recent = chat.say(rep, "/history acme since=10d").reply
    assert _entries([recent]) == [f"entry {i:02d}" for i in range(10)]
    both = _pages(chat, rep, "/history acme kind=note,email since=30d")
    assert _entries(both) == [f"entry {i:02d}" for i in range(30) if i % 3 != 1]
    # A date is the start of that day in the caller's timezone (UTC here).
    assert _entries([chat.say(rep, "/history acme since=2026-11-07").reply]) == [f"entry {i:02d}" for i in range(4)]


def test_bad_kind_or_since_names_what_is_allowed(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    _acme_with_history(app, 3)
    bad_kind = chat.say(rep, "/history acme kind=fax").text
    assert "Kind must be one of note, call, email, meeting, chat, not 'fax'" in bad_kind
    bad_since = chat.say(rep, "/history acme since=yesterday").text
    assert "Since takes a date (2026-01-31) or an age (30d, 12w), not 'yesterday'" in bad_since
    assert "No customer matches 'initech'" in chat.say(rep, "/history initech").text


def test_console_more_continues_the_history(app):
    import io

    from bot.adapters.console.adapter import run_console

    _acme_with_history(app, 25)
    out = io.StringIO()
    run_console(app, stdin=io.StringIO("/history acme\n/more\n"), stdout=out)
    text = out.getvalue()
    assert "1–20 of 25 interactions" in text and "21–25 of 25 interactions" in text
    assert "entry 24" in text


def test_telegram_more_button_shows_the_next_page_of_history(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    _acme_with_history(rig.app, 23)
    sam = rig.staff(900, "Sam Sales", Role.SALES)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/history acme"))
    first = tg.last_sent(SUPPORT_CHAT)
    assert "1–20 of 23 interactions" in first.text and "entry 21" not in first.text
    rig.send(tg.press(sam, first, "More"))
    second = tg.last_sent(SUPPORT_CHAT)
    assert "21–23 of 23 interactions" in second.text and "entry 22" in second.text
