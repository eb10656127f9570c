"""Who may change a customer, deal or ticket: the one rule every door (chat, REST API, plugins) meets.

Under ``EditScope.OWN`` (the default for people, CHATCRM_EDIT_SCOPE) a rep may change only the
records they own (a ticket: that is assigned to them) or that nobody owns; managers and admins may
change everything. Under ``EditScope.ALL`` anyone whose role may write may change anything, as
before this rule. Reading is not restricted. The refusal names the owner, so the rep knows whom to ask.
"""

from __future__ import annotations

from typing import Protocol

from crm_core.actor import EditScope
from crm_core.errors import Forbidden
from crm_core.i18n import _
from crm_core.models import Deal, Role, Ticket, User
from crm_core.uow import UnitOfWork

# The roles the rule restricts. Managers and admins change everything; the system, jobs, imports
# (no role) and a customer's own flows (sharing their phone, writing to us) are not a rep's edit.
RESTRICTED = frozenset({Role.SALES.value, Role.SUPPORT.value, Role.VIEWER.value})


def may_change(uow: UnitOfWork, owner_id: int | None) -> bool:
    actor = uow.actor
    if actor.edit_scope is EditScope.ALL or actor.role not in RESTRICTED:
        return True
    return owner_id is None or owner_id == actor.user_id


def _holder(uow: UnitOfWork, user_id: int) -> str:
    user = uow.session.get(User, user_id)
    return user.name if user else _("user #{id}", id=user_id)


class Owned(Protocol):
    """A customer as the rule needs it: a Customer, or an import's snapshot of one."""

    @property
    def name(self) -> str: ...

    @property
    def owner_id(self) -> int | None: ...


def check_customer(uow: UnitOfWork, customer: Owned) -> None:
    """Raise Forbidden unless the actor may change ``customer``."""
    if not may_change(uow, customer.owner_id):
        assert customer.owner_id is not None
        raise Forbidden(
            _(
                "{what} is owned by {name}; ask them or a manager",
                what=customer.name,
                name=_holder(uow, customer.owner_id),
            )
        )


def check_deal(uow: UnitOfWork, deal: Deal) -> None:
    if not may_change(uow, deal.owner_id):
        assert deal.owner_id is not None
        raise Forbidden(
            _(
                "Deal #{id} ({title}) is owned by {name}; ask them or a manager",
                id=deal.id,
                title=deal.title,
                name=_holder(uow, deal.owner_id),
            )
        )


def check_ticket(uow: UnitOfWork, ticket: Ticket) -> None:
    """A ticket belongs to its assignee."""
    if not may_change(uow, ticket.assignee_id):
        assert ticket.assignee_id is not None
        raise Forbidden(
            _(
                "Ticket #{id} is assigned to {name}; ask them or a manager",
                id=ticket.id,
                name=_holder(uow, ticket.assignee_id),
            )
        )
