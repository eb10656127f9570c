"""The small value types plugins return from the registration hooks (see bot.hookspecs)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from crm_core.scheduling import JobRun, Trigger

# Task and permission names: dotted lowercase words ("digests.send", "quotes.create").
DOTTED_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class PermissionGrant:
    """A permission (``"quotes.create"``), what it allows, and the roles that have it."""

    permission: str
    description: str
    roles: Iterable[str] = ()

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z0-9_.]*$", self.permission):
            raise ValueError(f"permission {self.permission!r}: use lowercase words joined by dots")
        object.__setattr__(self, "roles", frozenset(self.roles))


@dataclass(frozen=True)
class JobDefinition:
    """A task by stable name; with a ``trigger`` also a recurring system job (id = name)."""

    name: str
    function: Callable[[JobRun], None]
    description: str = ""
    # When set, the leading scheduler keeps a job of this name registered with this trigger.
    trigger: Trigger | None = None
    args: dict[str, Any] = field(default_factory=dict)
    # How late a recurring run may still start (None: however late).
    misfire_grace_seconds: int | None = None
    # A run's lease: about its expected run time (renewed every third of it while it runs, so a
    # longer run keeps it); a runner killed mid-run is retried after this long. None: the
    # scheduler's default (CHATCRM_SCHEDULER_JOB_LEASE, 60 s).
    lease_seconds: float | None = None

    def __post_init__(self) -> None:
        if not DOTTED_NAME.match(self.name):
            raise ValueError(f"job name {self.name!r}: use dotted lowercase words, e.g. quotes.expire")
        if self.lease_seconds is not None and not self.lease_seconds > 0:
            raise ValueError(f"job {self.name}: lease_seconds must be positive")


@dataclass(frozen=True)
class OutboxKind:
    """A deferred outbox kind: rows are prepared by ``prepare(session, row)`` right before sending."""

    name: str
    prepare: Callable[..., Any]
    description: str = ""
