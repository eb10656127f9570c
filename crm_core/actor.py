"""Who is making a change: recorded on every audit entry, and asked by the ownership rule
(crm_core.services.ownership) what they may change."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EditScope(enum.StrEnum):
    """What a rep (not a manager or admin) may change: their own and unassigned records, or everything."""

    OWN = "own"
    ALL = "all"


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    platform: str
    # The user's role ("sales", "manager", …); None for the system, jobs and scripts.
    role: str | None = None
    # The ownership rule this actor works under (CHATCRM_EDIT_SCOPE for people). The system, jobs
    # and scripts act for everyone: ALL.
    edit_scope: EditScope = EditScope.ALL


SYSTEM = Actor(user_id=None, name="system", platform="system")
