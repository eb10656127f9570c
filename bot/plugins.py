"""The plugin manager: finds chatcrm's plugins, built-in and installed, and collects what they contribute.

Plugins are found, in this order, through:

1. the ``chatcrm`` entry-point group of every installed distribution. chatcrm's own features
   (each command module, the Slack, Telegram and console adapters, the nightly jobs) are entry
   points of the ``chatcrm`` distribution itself, so they load exactly as a third-party plugin does;
2. ``CHATCRM_PLUGINS=module.path,…`` (``Settings.plugins``): one-off local plugins, not installed;
3. objects handed to ``load`` directly (tests).

``Plugins.load`` runs once, in the composition root (bot.bootstrap). It asks every registration
hook once and keeps the answers: commands, permissions, jobs, outbox kinds, platforms, template
folders. ``card_sections`` and ``on_event`` are called later, per card and per event.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import pluggy

from bot import hookspecs
from bot.plugin_types import JobDefinition, OutboxKind
from bot.roles import PermissionTable
from crm_core.errors import SetupError

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bot.bootstrap import App
    from bot.context import Context
    from bot.messages import Section
    from bot.platform_spec import PlatformSpec
    from bot.router import CommandGroup
    from bot.settings import Settings
    from crm_core.events import Event
    from crm_core.models import Customer
    from crm_core.outbox import Preparer
    from crm_core.scheduling import Task

log = logging.getLogger("chatcrm.plugins")

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISTRIBUTION = "chatcrm"

hookimpl = hookspecs.hookimpl


class _Manager(pluggy.PluginManager):
    """pluggy's manager, quicker to register a module. ``register`` asks about every name in the
    module, and pluggy looks each one up with ``inspect.getattr_static`` (it must not run properties).
    A module's names are plain entries of its ``__dict__``: one that holds no function, or a plain
    function without the hookimpl marker, cannot be a hook implementation and is passed over without
    that lookup; the rest is examined by pluggy itself. The same hooks are found; each app built (one
    per test in our suite) spent about 4 ms of CPU in those lookups over our thirty plugin modules."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        if isinstance(plugin, types.ModuleType):
            value = vars(plugin).get(name)
            if not isinstance(value, types.FunctionType | types.MethodType | staticmethod | classmethod):
                return None
            # A plain function carries the hookimpl marker itself (pluggy reads nothing else from it).
            if isinstance(value, types.FunctionType) and getattr(value, self._marker, None) is None:
                return None
        return super().parse_hookimpl_opts(plugin, name)

    @functools.cached_property
    def _marker(self) -> str:
        return self.project_name + "_impl"


class PluginError(SetupError):
    """A plugin cannot be loaded or contradicts another; the message names the plugin."""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, as ``chatcrm plugins`` lists it."""

    name: str
    version: str
    # "built-in", "entry point", "CHATCRM_PLUGINS" or "given"
    source: str
    hooks: tuple[str, ...]
    module: str


@functools.cache
def _entry_points() -> tuple[tuple[importlib.metadata.EntryPoint, str, str], ...]:
    """Every ``chatcrm`` entry point with its distribution's name and version, by name: once per
    process. Scanning the installed distributions costs tens of milliseconds, and reading a
    distribution's name and version parses its whole METADATA file (a few milliseconds each, for
    each of some thirty entry points): a test suite building an app per test paid that each time."""
    found = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    return tuple((entry_point, *_dist_name(entry_point)) for entry_point in found)


def _dist_name(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return "", ""
    metadata = dist.metadata
    return metadata["Name"] or "", metadata["Version"] or ""


def _own_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Plugins:
    """The loaded plugins and what they contributed (built by ``load``)."""

    def __init__(self, manager: pluggy.PluginManager, infos: list[PluginInfo], settings: Settings):
        self.manager = manager
        self.infos = infos
        hook = manager.hook
        self.command_groups: list[CommandGroup] = list(_flatten(hook.register_commands()))
        self.permissions = PermissionTable(_flatten(hook.register_permissions()))
        self.jobs: dict[str, JobDefinition] = _unique(_flatten(hook.register_jobs(settings=settings)), "job")
        self.outbox_kinds: dict[str, OutboxKind] = _unique(
            _flatten(hook.register_outbox_kinds(settings=settings)), "outbox kind"
        )
        # By name, so everything that walks the platforms (senders, services) does so in a stable order.
        self.platforms: dict[str, PlatformSpec] = dict(
            sorted(_unique(_flatten(hook.register_platforms(settings=settings)), "platform").items())
        )
        self.template_dirs: list[str] = [str(path) for path in _flatten(hook.register_templates())]
        self._check()

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, settings: Settings, extra: Iterable[object] = ()) -> Plugins:
        """Load every plugin (entry points, then ``settings.plugins``, then ``extra``); PluginError
        names the plugin that cannot be loaded."""
        manager = _Manager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        infos: list[PluginInfo] = []
        own = False
        for entry_point, dist, version in _entry_points():
            builtin = dist.lower() == DISTRIBUTION
            own = own or builtin
            try:
                plugin = entry_point.load()
            except Exception as exc:  # noqa: BLE001 - named and re-raised for the user
                raise PluginError(f"plugin {entry_point.name!r} ({entry_point.value}) cannot be loaded: {exc}") from exc
            infos.append(
                _register(manager, plugin, entry_point.name, version, "built-in" if builtin else "entry point")
            )
        if not own:
            raise PluginError(
                "chatcrm's built-in plugins are not installed (no 'chatcrm' entry points): install the "
                "project with `make venv` or `pip install -e .`"
            )
        for path in settings.plugins:
            try:
                plugin = importlib.import_module(path)
            except Exception as exc:  # noqa: BLE001 - named and re-raised for the user
                raise PluginError(f"CHATCRM_PLUGINS: {path!r} cannot be imported: {exc}") from exc
            infos.append(_register(manager, plugin, path, getattr(plugin, "__version__", ""), "CHATCRM_PLUGINS"))
        for plugin in extra:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            infos.append(_register(manager, plugin, name, getattr(plugin, "__version__", ""), "given"))
        return cls(manager, infos, settings)

    def _check(self) -> None:
        known = self.permissions.names()
        for group in self.command_groups:
            for command in group.commands:
                if str(command.permission) not in known:
                    raise PluginError(
                        f"/{command.name} needs the permission {command.permission!r}, which no plugin registers"
                    )

    # -- what the plugins contributed ------------------------------------------------------------

    @property
    def tasks(self) -> Mapping[str, Task]:
        """Task functions by stable name, for crm_core.scheduling.run_due."""
        return {name: job.function for name, job in self.jobs.items()}

    @property
    def preparers(self) -> Mapping[str, Preparer]:
        """Deferred outbox preparers by kind, for the outbox sender."""
        return {name: kind.prepare for name, kind in self.outbox_kinds.items()}

    def routes(self, app: App) -> list[BaseRoute]:
        return list(_flatten(self.manager.hook.register_routes(app=app)))

    def card_sections(self, customer: Customer, ctx: Context) -> list[Section]:
        """Every plugin's extra card sections; a plugin that raises is logged and left out."""
        found: list[Section] = []
        for impl in reversed(self.manager.hook.card_sections.get_hookimpls()):
            try:
                result = impl.function(**_arguments(impl, customer=customer, ctx=ctx))
            except Exception:
                log.exception("card_sections of plugin %s failed for customer %s", impl.plugin_name, customer.id)
                continue
            if result is None:
                continue
            # pluggy types a hook's result as object; the hook contract says a Section or an iterable of them.
            found.extend([result] if _is_section(result) else list(cast("Iterable[Section]", result)))
        return found

    def event_listeners(self, app: App) -> dict[str, Callable[[Event], Any]]:
        """One listener per plugin that implements ``on_event``, by plugin name, so each plugin has its
        own delivery cursor and a failing one never holds up another."""
        listeners: dict[str, Callable[[Event], Any]] = {}
        for impl in self.manager.hook.on_event.get_hookimpls():
            listeners[f"plugin:{impl.plugin_name}"] = functools.partial(_call_listener, impl, app)
        return listeners


def _register(manager: pluggy.PluginManager, plugin: object, name: str, version: str, source: str) -> PluginInfo:
    if manager.get_plugin(name) is not None or manager.is_registered(plugin):
        raise PluginError(f"plugin {name!r} is registered twice (an entry point and CHATCRM_PLUGINS?)")
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from exc
    hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    return PluginInfo(name=name, version=version or _own_version(), source=source, hooks=hooks, module=module)


def _flatten(results: Iterable[Any]) -> Iterable[Any]:
    for result in results:
        if result is None:
            continue
        yield from result


def _unique(items: Iterable[Any], what: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        if item.name in found:
            raise PluginError(f"{what} {item.name!r} is registered by two plugins")
        found[item.name] = item
    return found


def _is_section(value: object) -> TypeGuard[Section]:
    from bot.messages import Section

    return isinstance(value, Section)


def _arguments(impl: pluggy.HookImpl, **offered: Any) -> dict[str, Any]:
    # pluggy passes an implementation only the arguments it names; calling one directly must too.
    return {name: offered[name] for name in impl.argnames if name in offered}


def _call_listener(impl: pluggy.HookImpl, app: App, event: Event) -> Any:
    return impl.function(**_arguments(impl, event=event, app=app))
