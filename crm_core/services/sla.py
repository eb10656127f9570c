"""Support SLA targets: how soon a ticket of each priority needs a first response and a resolution."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from crm_core.models import TicketPriority


@dataclass(frozen=True)
class Target:
    first_response: timedelta
    resolution: timedelta


DEFAULT_TARGETS: dict[TicketPriority, Target] = {
    TicketPriority.URGENT: Target(timedelta(hours=1), timedelta(hours=8)),
    TicketPriority.HIGH: Target(timedelta(hours=4), timedelta(hours=24)),
    TicketPriority.NORMAL: Target(timedelta(hours=8), timedelta(hours=72)),
    TicketPriority.LOW: Target(timedelta(hours=24), timedelta(hours=120)),
}


def due_times(
    priority: TicketPriority, opened_at: datetime, targets: dict[TicketPriority, Target] | None = None
) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket opened at ``opened_at``."""
    target = (targets or DEFAULT_TARGETS)[priority]
    return opened_at + target.first_response, opened_at + target.resolution
