"""A chat platform as a plugin declares it: its traits, default send rates, and what it plugs in.

An adapter's plugin module returns one ``PlatformSpec`` from the ``register_platforms`` hook. Core
reads the spec instead of naming platforms: the traits (crm_core.platforms) say what the platform
can do; the factories build its web routes, its outbox sender and the connections the worker
keeps open, and are called only when the platform is configured, so an SDK is imported only then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.rate_limit import PlatformLimits
from crm_core.platforms import PlatformTraits

if TYPE_CHECKING:
    from bot.bootstrap import App
    from bot.delivery import PlatformSender, RetryPolicy
    from bot.desk import TicketThreads
    from bot.inbox_runner import InboxProcessor
    from bot.settings import Settings
    from bot.web import WebMount
    from bot.worker import WorkerService


def _never(_settings: Settings) -> bool:
    return False


def _nothing(_app: App) -> Sequence:
    return ()


def _no_sender(_app: App) -> None:
    return None


def _no_threads(_settings: Settings) -> None:
    return None


@dataclass(frozen=True)
class PlatformSpec:
    traits: PlatformTraits
    # The platform's published send limits; CHATCRM_RATE_<NAME> overrides them.
    default_limits: PlatformLimits = field(default_factory=PlatformLimits)
    # True when the settings connect this platform (its token is set): `chatcrm run` then runs the worker.
    configured: Callable[[Settings], bool] = _never
    # The HTTP endpoints it serves in `chatcrm web` (webhooks, interactivity).
    web_mounts: Callable[[App], Sequence[WebMount]] = _nothing
    # Its outbox sender, or None when it cannot send (not configured).
    sender: Callable[[App], PlatformSender | None] = _no_sender
    # The connections `chatcrm worker` keeps open (Socket Mode, long polling).
    services: Callable[[App], Sequence[WorkerService]] = _nothing
    # What processes its deliveries kept in the inbox (bot.inbox_runner), for the worker's recovery;
    # None when it keeps none (not configured, or it handles each delivery in one go).
    inbox_processor: Callable[[App], InboxProcessor | None] = _no_sender
    # How its temporary failures are retried; None: the outbox's settings (CHATCRM_OUTBOX_*).
    retry: RetryPolicy | None = None
    # Its conversation where every ticket gets a thread (bot.desk.TicketThreads), when one is set
    # up in ``settings``; asked only when the platform is configured. Raises SettingsError.
    ticket_threads: Callable[[Settings], TicketThreads | None] = _no_threads

    @property
    def name(self) -> str:
        return self.traits.name
