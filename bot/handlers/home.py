"""The caller's home: their open deals, follow-ups due and assigned tickets, on one screen.

Slack shows it as the App Home tab; any platform can ask for it with the hidden ``/home`` command.
The screen is a list of sections, each built by a *home section provider*: a function that gets
the handler ``Context`` and returns a ``Section`` (or None to show nothing, e.g. when the caller's
role may not see it). Other areas add their own with the decorator, in their handler module::

    @home_section(order=20)
    def followups_due(ctx: Context) -> Section | None:
        ...

Lower ``order`` comes first: deals are 10, tickets 30, so 20 sits between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from bot.context import Context
from bot.handlers.common import deal_item, ticket_item
from bot.hookspecs import hookimpl
from bot.messages import Button, Reply, Request, Section
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.i18n import N_, _
from crm_core.models import Ticket, TicketStatus
from crm_core.services import deals

group = CommandGroup()

HomeSectionProvider = Callable[[Context], Section | None]
# How many entries a home section lists; the full lists are a command away.
HOME_LIST_LIMIT = 15


@dataclass(frozen=True)
class _Registered:
    order: int
    provider: HomeSectionProvider


_PROVIDERS: list[_Registered] = []


def home_section(order: int) -> Callable[[HomeSectionProvider], HomeSectionProvider]:
    """Register a provider of one home section; ``order`` places it (deals 10, tickets 30)."""

    def register(provider: HomeSectionProvider) -> HomeSectionProvider:
        _PROVIDERS.append(_Registered(order, provider))
        _PROVIDERS.sort(key=lambda r: r.order)
        return provider

    return register


def home_sections() -> list[HomeSectionProvider]:
    """The registered providers, in display order."""
    return [r.provider for r in _PROVIDERS]


@home_section(order=10)
def open_deals(ctx: Context) -> Section | None:
    if not ctx.can(Permission.DEALS_READ):
        return None
    found = deals.list_deals(ctx.uow, owner_id=ctx.caller.user_id, open_only=True, limit=HOME_LIST_LIMIT + 1)
    shown = found[:HOME_LIST_LIMIT]
    title = (
        _("Your open deals (the first {limit}; /deal list shows all)", limit=HOME_LIST_LIMIT)
        if len(found) > HOME_LIST_LIMIT
        else _("Your open deals")
    )
    return Section(
        title=title,
        items=tuple(deal_item(d, ctx.caller.timezone, with_customer=True) for d in shown),
        empty=_("No open deals."),
    )


@home_section(order=30)
def assigned_tickets(ctx: Context) -> Section | None:
    if not ctx.can(Permission.TICKETS_READ):
        return None
    found = list(
        ctx.uow.session.scalars(
            sa.select(Ticket)
            .where(
                Ticket.assignee_id == ctx.caller.user_id, Ticket.status.in_([TicketStatus.OPEN, TicketStatus.PENDING])
            )
            .order_by(Ticket.resolve_due_at.is_(None), Ticket.resolve_due_at, Ticket.id)
            .limit(HOME_LIST_LIMIT)
        )
    )
    return Section(
        title=_("Tickets assigned to you"),
        items=tuple(ticket_item(t, ctx.caller.timezone) for t in found),
        empty=_("No open tickets."),
    )


@group.command(
    "home", summary=N_("Your open deals, follow-ups due and tickets"), permission=Permission.ACCOUNT, hidden=True
)
def home(req: Request, ctx: Context) -> Reply:
    if ctx.caller.user_id is None or ctx.caller.role is None:
        return Reply(
            title=_("Welcome to chatcrm"),
            text=_(
                "You have no role in the CRM yet, so there is nothing to show here. "
                "Ask a chatcrm admin to give you one (/role)."
            ),
            buttons=(Button(_("Help"), "/help"),),
            private=True,
        )
    sections = tuple(s for s in (provider(ctx) for provider in home_sections()) if s is not None)
    buttons = []
    if ctx.can(Permission.CUSTOMERS_WRITE):
        buttons.append(Button(_("New customer"), "/customer new", opens_form=True))
    buttons.append(Button(_("Help"), "/help"))
    return Reply(
        title=_("Hello, {name}", name=ctx.caller.name),
        sections=sections,
        buttons=tuple(buttons),
        footer=_("Find a customer with /customer <name>."),
        private=True,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
