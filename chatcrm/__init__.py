"""chatcrm's public API for plugin authors: everything a plugin imports comes from here.

A plugin is a module with functions decorated by ``hookimpl`` whose names are the hooks of
``bot.hookspecs`` (``register_commands``, ``register_permissions``, ``register_jobs``,
``register_routes``, ``card_sections``, ``on_event``, …). The names below are that contract:

- ``hookimpl``: the decorator for hook functions;
- ``CommandGroup``, ``arg``, ``rest``, ``Kind``: declaring chat commands and their arguments;
- ``Request``, ``Reply``, ``Section``, ``Field``, ``Item``, ``Button``, ``Tone``: the
  platform-neutral messages a command receives and returns (every adapter renders them);
- ``Context``: what a command or card section gets besides its request (``ctx.uow``, ``ctx.caller``,
  ``ctx.can(permission)``, ``ctx.settings``);
- ``PermissionGrant``, ``JobDefinition``, ``OutboxKind``: what the registration hooks return.

The testing kit for plugin authors is ``chatcrm.testing`` (a pytest plugin). See
``examples/plugins/chatcrm-example`` for a complete plugin with its tests.

Importing ``chatcrm`` is cheap: the names are imported on first use (PEP 562), so a plugin's
module can be imported by ``chatcrm --help`` without pulling in the whole bot.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.args import Kind, arg, rest
    from bot.context import Context
    from bot.hookspecs import hookimpl
    from bot.messages import Button, Field, Item, Reply, Request, Section, Tone
    from bot.plugin_types import JobDefinition, OutboxKind, PermissionGrant
    from bot.router import CommandGroup

# Public name -> the module that defines it.
_EXPORTS = {
    "hookimpl": "bot.hookspecs",
    "CommandGroup": "bot.router",
    "arg": "bot.args",
    "rest": "bot.args",
    "Kind": "bot.args",
    "Request": "bot.messages",
    "Reply": "bot.messages",
    "Section": "bot.messages",
    "Field": "bot.messages",
    "Item": "bot.messages",
    "Button": "bot.messages",
    "Tone": "bot.messages",
    "PermissionGrant": "bot.plugin_types",
    "JobDefinition": "bot.plugin_types",
    "OutboxKind": "bot.plugin_types",
    "Context": "bot.context",
}

__all__ = [
    "Button",
    "CommandGroup",
    "Context",
    "Field",
    "Item",
    "JobDefinition",
    "Kind",
    "OutboxKind",
    "PermissionGrant",
    "Reply",
    "Request",
    "Section",
    "Tone",
    "arg",
    "hookimpl",
    "rest",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chatcrm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    # Cache it: later lookups are plain module attribute reads.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
