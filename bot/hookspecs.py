"""The hooks a chatcrm plugin can implement: the one documented contract between chatcrm and its plugins.

chatcrm is built the way pytest and Datasette are: on pluggy, with its own built-in behaviour
registered through these same hooks. The Slack, Telegram and console adapters are plugins that
implement ``register_platforms``; every command module implements ``register_commands``; the
nightly jobs implement ``register_jobs``. A third-party plugin is found through the ``chatcrm``
entry-point group (or ``CHATCRM_PLUGINS=module.path,…``) and is loaded the same way.

A plugin is a module (or object) with functions decorated by ``chatcrm.hookimpl`` whose names
are the hooks below. It implements only the hooks it needs, and may take fewer arguments than
a hook offers (pluggy passes only the ones a function names).

Registration hooks (``register_*``) are called once, when the app is built; each returns an
iterable (a list is fine) whose items are collected from every plugin. ``card_sections`` is called
for every customer card, and ``on_event`` by the worker for every domain event after it was
committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bot.bootstrap import App
    from bot.context import Context
    from bot.messages import Section
    from bot.platform_spec import PlatformSpec
    from bot.plugin_types import JobDefinition, OutboxKind, PermissionGrant
    from bot.router import CommandGroup
    from bot.settings import Settings
    from crm_core.events import Event
    from crm_core.models import Customer

PROJECT = "chatcrm"

hookspec = pluggy.HookspecMarker(PROJECT)
# What a plugin decorates its hook functions with (also exported as ``chatcrm.hookimpl``).
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_commands() -> Iterable[CommandGroup]:
    """Chat commands: return ``CommandGroup`` objects whose commands the router serves.

    Every command names a permission (``bot.roles.Permission`` or one the plugin registers with
    ``register_permissions``). A command path (``"quote"``, ``"deal stage"``) may be registered by one
    plugin only; a clash stops the app from starting with a message naming the command. A command
    that only reads may say so (``read_only=True``): on SQLite it then runs beside the one writer
    instead of waiting for the write lock, and a write in it fails.
    """


@hookspec
def register_permissions() -> Iterable[PermissionGrant]:
    """New permissions, and the roles that get them: return ``PermissionGrant`` objects.

    A grant names a permission (``"quotes.create"``), says what it allows, and lists the roles that
    have it (``admin`` has every permission anyway). Deny by default: a permission no grant gives to a
    role is refused to that role.
    """


@hookspec
def register_jobs(settings: Settings) -> Iterable[JobDefinition]:
    """Scheduled tasks by stable name: return ``JobDefinition`` objects.

    A job definition names a task (``"quotes.expire"``) and the function that runs it (it gets one
    ``crm_core.scheduling.JobRun``). With a ``trigger`` it is also a recurring system job the leading
    scheduler keeps registered (e.g. every night at 02:00); without one it is a task that code
    schedules by name with ``crm_core.scheduling.schedule`` (a reminder at a given time). Stored
    schedules refer to the name, so renaming or moving the function never breaks them.
    """


@hookspec
def register_outbox_kinds(settings: Settings) -> Iterable[OutboxKind]:
    """Deferred outbox kinds: return ``OutboxKind`` objects.

    Rows of a deferred kind are queued without their text and prepared by the kind's function right
    before they are sent (campaign messages are rendered then, after pause, cancel and consent are
    checked again). The function gets the session and the row, and returns the prepared payload or
    None to drop the row.
    """


@hookspec
def register_platforms(settings: Settings) -> Iterable[PlatformSpec]:
    """Chat platforms: return ``PlatformSpec`` objects (one per adapter).

    A spec declares what the platform can do (``crm_core.platforms.PlatformTraits``: text format,
    edits, ephemeral replies, DMs, campaigns, identity form), its default send rates, whether it is
    configured in ``settings``, and factories for its web routes, its outbox sender and the
    connections the worker keeps open. Core reads the declaration instead of naming platforms, so a
    new platform is one folder and one entry point.
    """


@hookspec
def register_routes(app: App) -> Iterable[BaseRoute]:
    """HTTP routes (Starlette ``Route``/``Mount`` objects, any ASGI app) served by ``chatcrm web``.

    Plugins should mount under their own prefix (``/plugins/<name>/…``). ``app`` is the composition
    root (``app.uow()`` opens a unit of work, ``app.settings`` holds the settings); routes run in the
    web process and check authorisation themselves.
    """


@hookspec
def register_templates() -> Iterable[str]:
    """Extra template folders (paths), searched after the built-in ``templates/`` folder.

    A folder holds ``<kind>/<language>.<format>.j2`` files like the built-in one; a plugin ships the
    templates of the messages it sends (``quote/en.text.j2``).
    """


@hookspec
def card_sections(customer: Customer, ctx: Context) -> Section | Iterable[Section] | None:
    """Extra sections for a customer's card: return a ``bot.messages.Section``, several, or None.

    Called inside the request's unit of work (``ctx.uow``) for every card shown; keep it to a query
    or two, and only read: ``/customer`` is a reading command (``read_only=True``), which on SQLite
    runs in a transaction where a write fails (write from ``on_event`` or a command of your own).
    ``ctx.caller`` is who is looking: show only what their role may see (``ctx.can(...)``).
    A plugin that raises is logged and left off the card; the card is still shown.
    """


@hookspec
def on_event(event: Event, app: App) -> Any:
    """A domain event (``crm_core.events.Event``) that was committed: ``deal.won``, ``ticket.created``, …

    Called by ``chatcrm worker`` after the change committed, at least once per event and listener, in
    the order the events happened for each entity. Make it idempotent (``event.id`` is unique). A
    listener that raises is logged and retried with backoff without holding up other plugins or the
    request that caused the event. ``app.uow()`` opens a unit of work if you need the database; what
    you send goes through the outbox (``crm_core.outbox.enqueue``) in that unit of work.
    """
