"""Support SLA targets: how soon a ticket of each priority needs a first response and a resolution.

Defaults below; each priority can be overridden with ``CHATCRM_SLA_<PRIORITY>=<first>/<resolution>``
(e.g. ``CHATCRM_SLA_URGENT=30m/4h``; units m, h, d).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from crm_core.i18n import _
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

_DURATION = re.compile(r"^\s*(\d{1,5})\s*([mhd])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def env_name(priority: TicketPriority) -> str:
    return f"CHATCRM_SLA_{priority.value.upper()}"


def parse_duration(raw: str) -> timedelta:
    """``"30m"``, ``"4h"``, ``"2d"`` -> timedelta; ValueError otherwise."""
    match = _DURATION.match(raw)
    if not match or int(match.group(1)) == 0:
        raise ValueError(_("{value} is not a duration like 30m, 4h or 2d", value=repr(raw.strip())))
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def targets_from_env(env: Mapping[str, str]) -> dict[TicketPriority, Target]:
    """The targets with any ``CHATCRM_SLA_<PRIORITY>`` overrides; ValueError names a bad variable."""
    targets = dict(DEFAULT_TARGETS)
    for priority in TicketPriority:
        raw = env.get(env_name(priority))
        if not raw or not raw.strip():
            continue
        first, sep, resolution = raw.partition("/")
        try:
            if not sep:
                raise ValueError(_("write it as <first response>/<resolution>, e.g. 4h/24h"))
            target = Target(parse_duration(first), parse_duration(resolution))
        except ValueError as exc:
            raise ValueError(f"{env_name(priority)}={raw!r}: {exc}") from None
        if target.resolution < target.first_response:
            raise ValueError(
                _(
                    "{setting}: the resolution target is shorter than the first response",
                    setting=f"{env_name(priority)}={raw!r}",
                )
            )
        targets[priority] = target
    return targets


def due_times(
    priority: TicketPriority, opened_at: datetime, targets: Mapping[TicketPriority, Target] | None = None
) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket opened at ``opened_at``."""
    target = (targets or DEFAULT_TARGETS)[priority]
    return opened_at + target.first_response, opened_at + target.resolution
