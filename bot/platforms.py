"""The platforms the plugins registered, and the web mounts, worker services and outbox senders they contribute.

Every chat platform is a plugin (``register_platforms``, bot.platform_spec): this module only asks
the specs, never names a platform. Adapters are imported only when configured, so a console-only
install never loads an SDK.

The worker always runs the scheduler, the outbox sender and the event delivery, even when no chat
platform is configured: follow-up reminders and digests for console users are then printed by the
console sender, and rows for a platform this worker has no sender for simply wait (pending)
until a worker with that platform configured delivers them. Nothing is lost by starting small.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.bootstrap import App
from bot.delivery import PlatformSender
from bot.platform_spec import PlatformSpec
from bot.rate_limit import PlatformLimits
from bot.web import WebMount
from bot.worker import WorkerService

if TYPE_CHECKING:
    from bot.outbox_sender import OutboxSender


def configured_platforms(app: App) -> list[str]:
    """The chat platforms whose settings connect them (a token is set)."""
    return [name for name, spec in app.plugins.platforms.items() if spec.configured(app.settings)]


def web_mounts(app: App) -> list[WebMount]:
    """The HTTP endpoints of every configured platform (Slack events, Telegram webhook, …).

    Raises SettingsError when a platform is set up for HTTP without its secret.
    """
    mounts: list[WebMount] = []
    for name in configured_platforms(app):
        mounts.extend(app.plugins.platforms[name].web_mounts(app))
    return mounts


def senders(app: App) -> dict[str, PlatformSender]:
    """The outbox's ``PlatformSender`` for each platform that can send now, by platform name."""
    return _senders(app, lambda _spec: True)


def chat_senders(app: App) -> dict[str, PlatformSender]:
    """``senders`` of the chat platforms people use remotely (not the console, not webhooks): what a
    web process sends what a request queued with, right after its commit (the worker does the rest).
    The others are not even made (the webhook sender's HTTP client costs a web start 0.2 s)."""
    return _senders(app, lambda spec: spec.traits.chat and not spec.traits.local)


def _senders(app: App, wanted: Callable[[PlatformSpec], bool]) -> dict[str, PlatformSender]:
    found: dict[str, PlatformSender] = {}
    for name, spec in app.plugins.platforms.items():
        sender = spec.sender(app) if wanted(spec) else None
        if sender is not None:
            found[name] = sender
    return found


def interactive_outbox(
    app: App, platform: str, own: PlatformSender, limits: PlatformLimits, **options: Any
) -> OutboxSender:
    """The web process's outbox sender for what a request queued, sent right after its commit
    (``OutboxSender.send_now``): through ``platform``'s ``own`` sender (which shares the adapter's
    connection) with its ``limits``, and every other chat platform's sender, since what a request
    makes the bot say may go elsewhere (a staff reply in a Slack thread goes to a Telegram customer;
    a customer's Telegram message is posted in the ticket's Slack thread). ``options`` go to the
    ``OutboxSender`` (``on_moved``)."""
    from bot.interactive import AfterSendRecorder
    from bot.outbox_sender import OutboxSender, SenderSettings

    return OutboxSender(
        app.engine,
        app.session_factory,
        {**chat_senders(app), platform: own},
        SenderSettings.from_env(app.settings.extra, {**default_limits(app), platform: limits}),
        preparers=app.plugins.preparers,
        after=AfterSendRecorder(app.session_factory, app.router.recorder),
        **options,
    )


def default_limits(app: App) -> dict[str, PlatformLimits]:
    """Each platform's declared send limits (before CHATCRM_RATE_<PLATFORM> overrides)."""
    return {name: spec.default_limits for name, spec in app.plugins.platforms.items()}


def platform_services(app: App) -> list[WorkerService]:
    """The chat connections the worker keeps open (Socket Mode, long polling, …)."""
    services: list[WorkerService] = []
    for name in configured_platforms(app):
        services.extend(app.plugins.platforms[name].services(app))
    return services


def inbox_runner(app: App):
    """Processes the deliveries the platforms keep in the inbox (bot.inbox_runner), for recovery."""
    from bot.inbox_runner import InboxRunner, InboxSettings

    processors = {}
    for name in configured_platforms(app):
        processor = app.plugins.platforms[name].inbox_processor(app)
        if processor is not None:
            processors[name] = processor
    return InboxRunner(app.session_factory, InboxSettings.from_env(app.settings.extra), processors)


def worker_services(app: App, platform_senders: Mapping[str, PlatformSender] | None = None) -> list[WorkerService]:
    """What ``chatcrm worker`` runs: the chat connections, then the scheduler, the outbox sender and
    the delivery of domain events to the plugins' ``on_event``, and the recovery of inbound
    deliveries a process left unfinished."""
    from bot.event_worker import EventWorkerService
    from bot.inbox_runner import InboxRecovery
    from bot.interactive import AfterSendRecorder
    from bot.outbox_sender import OutboxSender, SenderSettings
    from bot.scheduler import SchedulerService, SchedulerSettings
    from bot.settings import env_number

    env = app.settings.extra
    sender = OutboxSender(
        app.engine,
        app.session_factory,
        senders(app) if platform_senders is None else platform_senders,
        SenderSettings.from_env(env, default_limits(app)),
        preparers=app.plugins.preparers,
        after=AfterSendRecorder(app.session_factory, app.router.recorder),
        retries={name: spec.retry for name, spec in app.plugins.platforms.items() if spec.retry is not None},
        owns_senders=platform_senders is None,
    )
    scheduler = SchedulerService(
        app.engine,
        app.session_factory,
        SchedulerSettings.from_env(env),
        config={**env, "CHATCRM_CURRENCY": app.settings.currency},
        on_ran=sender.wake,
        jobs=list(app.plugins.jobs.values()),
    )
    # Each plugin's on_event is a listener of its own (own cursor, own retries), so one failing
    # plugin never holds up another.
    listeners = app.plugins.event_listeners(app)
    events = EventWorkerService(
        app.session_factory,
        lambda: listeners,
        poll_seconds=env_number(env, "CHATCRM_EVENTS_POLL", 1.0),
        # Renewed with every event delivered; a worker killed mid-delivery holds it this long at most.
        lease=timedelta(seconds=env_number(env, "CHATCRM_EVENTS_LEASE", 30.0)),
    )
    recovery = inbox_runner(app)
    services: list[WorkerService] = [*platform_services(app), scheduler, sender, events]
    if recovery.processors:
        services.append(InboxRecovery(recovery))
    return services
