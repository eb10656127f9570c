"""Paged lists in replies: the ``page=`` option, the "More" button and the "1–20 of 159" line.

A list command reads one page (``crm_core.paging``) and ends its reply with a *More* button whose
command is the same command line with ``page=`` set to the next page, so a press in Slack or
Telegram (or ``/more`` in the console) asks for exactly that page.
"""

from __future__ import annotations

import re

from bot.args import Kind, Param, opt
from bot.messages import Button, Request
from crm_core.i18n import N_, _, format_number
from crm_core.paging import Page

PAGE_OPTION: Param = opt("page", Kind.INT, label=N_("Page"), hint=N_("which page of a long list, from 1"))
# The label of the button showing the next page (translated where the button is built).
MORE = N_("More")

_PAGE_WORD = re.compile(r"(?:^|\s)page=\S*", re.IGNORECASE)


def page_number(req: Request) -> int:
    return max(1, int(req.args.get("page") or 1))


def page_command(text: str, number: int) -> str:
    """``text`` asking for page ``number``: any page= it had is replaced."""
    return f"{_PAGE_WORD.sub('', text).rstrip()} page={number}"


def more_button(req: Request, page: Page) -> tuple[Button, ...]:
    if not page.has_more:
        return ()
    return (Button(_(MORE), page_command(req.text, page.number + 1), next_page=True),)


def position(page: Page, noun: str) -> str:
    """ "159 deal(s)" on a list that fits one page, "21–40 of 159 deal(s)" on a later or partial one.
    ``noun`` comes translated by the caller (``_("deal(s)")``)."""
    total = format_number(page.total)
    if page.number == 1 and not page.has_more:
        return _("{total} {noun}", total=total, noun=noun)
    if not page.items:
        return _("page {number} is past the end: {total} {noun}", number=page.number, total=total, noun=noun)
    return _(
        "{first}–{last} of {total} {noun}",
        first=format_number(page.first),
        last=format_number(page.last),
        total=total,
        noun=noun,
    )
