"""Send rates per platform: configuration and the limiter the outbox sender waits on.

Each platform declares its default limits in its ``PlatformSpec`` (the platforms' published
limits: Telegram 30 messages/s overall, 1/s per chat and 20/min per group; Slack 1 message/s per
channel). Override them with
``CHATCRM_RATE_<PLATFORM>``, e.g. ``CHATCRM_RATE_TELEGRAM="overall=30/s chat=1/s group=20/min"``
(``none`` lifts a limit).

A limit "N per T" is a sliding window: in any span of T seconds at most N sends. A send takes
its slot before the request goes out and is stamped when the request finishes, so even with
network delay the platform never sees more than N requests in any T-second span. A 429 pauses
the whole platform for the time it asks (``pause``).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
# By default conversations whose id starts with this are groups (Telegram's negative chat ids);
# a platform's limits may name another prefix.
GROUP_PREFIX = "-"


@dataclass(frozen=True)
class Rate:
    count: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.per_seconds <= 0:
            raise ValueError("a rate is at least 1 message per a positive time")

    @property
    def per_second(self) -> float:
        return self.count / self.per_seconds

    def __str__(self) -> str:
        unit = "min" if self.per_seconds % 60 == 0 and self.per_seconds >= 60 else "s"
        span = self.per_seconds / (60 if unit == "min" else 1)
        return f"{self.count}/{'' if span == 1 else f'{span:g}'}{unit}"


def parse_rate(raw: str) -> Rate | None:
    """``"30/s"``, ``"20/min"``, ``"1/2s"``, ``"none"`` -> Rate or None; ValueError otherwise."""
    if raw.strip().lower() in ("none", "off", "unlimited"):
        return None
    match = _RATE.match(raw.lower())
    if not match:
        raise ValueError(f"{raw!r} is not a rate (write e.g. 30/s, 20/min or none)")
    count = float(match.group(1))
    span = float(match.group(2) or 1) * _UNIT_SECONDS[match.group(3)]
    if count != int(count):
        # "0.5/s" means one per two seconds.
        return Rate(1, span / count)
    return Rate(int(count), span)


@dataclass(frozen=True)
class PlatformLimits:
    overall: Rate | None = None
    per_chat: Rate | None = None
    # For group conversations; None means the per-chat rate applies.
    per_group: Rate | None = None
    group_prefix: str = GROUP_PREFIX

    def for_conversation(self, conversation: str) -> Rate | None:
        if self.per_group is not None and conversation.startswith(self.group_prefix):
            return self.per_group
        return self.per_chat

    def describe(self) -> str:
        parts = [f"overall={self.overall or 'none'}", f"chat={self.per_chat or 'none'}"]
        if self.per_group:
            parts.append(f"group={self.per_group}")
        return " ".join(parts)


def parse_limits(raw: str, base: PlatformLimits | None = None) -> PlatformLimits:
    """``"overall=30/s chat=1/s group=20/min"`` (spaces or commas) on top of ``base``."""
    limits = base or PlatformLimits()
    keys = {"overall": "overall", "global": "overall", "chat": "per_chat", "channel": "per_chat", "group": "per_group"}
    for part in re.split(r"[\s,;]+", raw.strip()):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or key.lower() not in keys:
            raise ValueError(f"{part!r}: write overall=…, chat=… or group=…")
        # Any: the field is one of the three Rate | None fields named in ``keys``.
        change: dict[str, Any] = {keys[key.lower()]: parse_rate(value)}
        limits = replace(limits, **change)
    return limits


def limits_from_env(
    env: Mapping[str, str], defaults: Mapping[str, PlatformLimits] | None = None, platforms: list[str] | None = None
) -> dict[str, PlatformLimits]:
    """The platforms' declared default limits (``defaults``), overridden by ``CHATCRM_RATE_<PLATFORM>``."""
    defaults = defaults or {}
    result = dict(defaults)
    for key, value in env.items():
        if key.startswith("CHATCRM_RATE_"):
            platform = key.removeprefix("CHATCRM_RATE_").lower()
            try:
                result[platform] = parse_limits(value, defaults.get(platform))
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    for platform in platforms or ():
        result.setdefault(platform, PlatformLimits())
    return result


class Window:
    """At most ``rate.count`` sends in any ``rate.per_seconds``: slots are reserved before a send
    and stamped with the time it finished."""

    def __init__(self, rate: Rate):
        self.rate = rate
        self.finished: deque[float] = deque()
        self.in_flight = 0

    def delay(self, now: float) -> float:
        """Seconds until a slot is free (0: now; inf: when a send in flight finishes)."""
        horizon = now - self.rate.per_seconds
        while self.finished and self.finished[0] <= horizon:
            self.finished.popleft()
        used = len(self.finished) + self.in_flight
        if used < self.rate.count:
            return 0.0
        must_expire = used - self.rate.count  # index of the finished send whose expiry frees a slot
        if must_expire >= len(self.finished):
            return math.inf
        return self.finished[must_expire] + self.rate.per_seconds - now

    def reserve(self) -> None:
        self.in_flight += 1

    def finish(self, now: float) -> None:
        self.in_flight -= 1
        self.finished.append(now)

    def cancel(self) -> None:
        """A reserved slot that was not used: nothing was sent, so nothing counts."""
        self.in_flight -= 1

    def idle(self, now: float) -> bool:
        return self.in_flight == 0 and (not self.finished or self.finished[-1] <= now - self.rate.per_seconds)


@dataclass
class Slot:
    windows: list[Window]


@dataclass
class PlatformLimiter:
    """The limits of one platform, shared by every send to it from this process."""

    limits: PlatformLimits
    clock: Callable[[], float] = time.monotonic
    paused_until: float = 0.0
    _overall: Window | None = None
    _chats: dict[str, Window] = field(default_factory=dict)
    _turn: asyncio.Lock | None = None

    def __post_init__(self) -> None:
        self._overall = Window(self.limits.overall) if self.limits.overall else None

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + max(seconds, 0.0))

    def paused_for(self) -> float:
        return max(self.paused_until - self.clock(), 0.0)

    def _chat_window(self, conversation: str) -> Window | None:
        rate = self.limits.for_conversation(conversation)
        if rate is None:
            return None
        window = self._chats.get(conversation)
        if window is None:
            if len(self._chats) > 10_000:
                now = self.clock()
                for key in [k for k, w in self._chats.items() if w.idle(now)]:
                    del self._chats[key]
            window = self._chats[conversation] = Window(rate)
        return window

    async def acquire(self, conversation: str | None) -> Slot:
        """Wait until this conversation and the platform may have one more send, and take the slot.
        ``None``: the platform's overall budget only (an answer to someone waiting for it is not held
        to its chat's pace, but it still counts against what the platform allows us overall)."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        chat = self._chat_window(conversation) if conversation is not None else None
        while True:
            # The conversation's own window first, without holding up other conversations.
            wait = chat.delay(self.clock()) if chat else 0.0
            if wait > 0:
                await asyncio.sleep(0.005 if math.isinf(wait) else wait)
                continue
            # Then one waiter at a time for the shared budget: sends go out in the order they asked.
            async with self._turn:
                while True:
                    now = self.clock()
                    wait = max(self.paused_until - now, self._overall.delay(now) if self._overall else 0.0)
                    if wait <= 0:
                        break
                    await asyncio.sleep(0.005 if math.isinf(wait) else wait)
                if chat is not None and chat.delay(self.clock()) > 0:
                    continue
                windows = [w for w in (self._overall, chat) if w is not None]
                for window in windows:
                    window.reserve()
                return Slot(windows)

    def release(self, slot: Slot) -> None:
        now = self.clock()
        for window in slot.windows:
            window.finish(now)

    def cancel(self, slot: Slot) -> None:
        """Give back a slot without sending (the row turned out not to be ours to send)."""
        for window in slot.windows:
            window.cancel()
