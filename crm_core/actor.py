"""Who is making a change: recorded on every audit entry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    platform: str


SYSTEM = Actor(user_id=None, name="system", platform="system")
