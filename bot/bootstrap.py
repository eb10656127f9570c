"""The composition root: reads settings once and builds the plugins, engine, router, dispatcher and app.

Nothing connects to a database or network at import time; ``build_app`` does it, once. Everything
the app serves (commands, permissions, platforms, jobs, outbox kinds, templates) comes from the
plugins (bot.plugins), chatcrm's own features included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.dispatch import Dispatcher
from bot.plugins import PluginError, Plugins
from bot.router import Router
from bot.settings import Settings
from crm_core import db, field_crypto, i18n, key_rotation, platforms
from crm_core.actor import SYSTEM, Actor
from crm_core.customer_keys import Keyring
from crm_core.secret_key import SecretKeys, secret_keys
from crm_core.services import users
from crm_core.templating import catalog
from crm_core.uow import UnitOfWork


@dataclass
class App:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    router: Router
    dispatcher: Dispatcher
    plugins: Plugins

    def uow(self, actor: Actor = SYSTEM) -> UnitOfWork:
        return UnitOfWork(self.session_factory, actor)

    def close(self) -> None:
        self.engine.dispose()


log = logging.getLogger(__name__)


def open_database(settings: Settings, *, migrate: bool | None = None) -> tuple[Engine, SecretKeys]:
    """The engine, with the keys its personal columns are encrypted with (crm_core.field_crypto), its
    schema checked (or, for the SQLite default, migrated) and the stored data's keys checked.

    The keys are CHATCRM_SECRET_KEY or, for the embedded SQLite database, the key file next to it
    (generated, and said so once, on the first start). PostgreSQL without a key raises
    SecretKeyError before connecting; a key that does not open the stored data raises FieldKeyError.
    Both are one line for the operator.
    """
    engine = db.create_engine(settings.database_url)
    try:
        keys = secret_keys(settings.secret_key, settings.database_url, create=True)
        if keys.notice:
            log.warning("%s", keys.notice)
        field_crypto.use_keys(engine, field_crypto.FieldKeys(keys.keys))
        db.check_connection(engine)
        db.ensure_schema(engine, auto_upgrade=settings.is_sqlite if migrate is None else migrate)
        key_rotation.check_keys(engine, keys.keys)
    except BaseException:
        engine.dispose()
        raise
    return engine, keys


def load_plugins(settings: Settings, extra: Iterable[object] = ()) -> Plugins:
    """Load the plugins and record what core must know process-wide: the platforms' traits and the
    plugins' template folders."""
    loaded = Plugins.load(settings, extra)
    if settings.templates_dir:
        catalog.use_templates_dir(settings.templates_dir)
    for spec in loaded.platforms.values():
        platforms.register(spec.traits)
    catalog.add_template_dirs(loaded.template_dirs)
    return loaded


def build_router(settings: Settings | None = None, plugins: Plugins | None = None) -> Router:
    plugins = plugins or load_plugins(settings or Settings.from_env())
    try:
        return Router(plugins.command_groups, plugins.permissions)
    except ValueError as exc:  # two plugins registered the same command
        raise PluginError(str(exc)) from None


def build_app(settings: Settings | None = None, *, migrate: bool | None = None, plugins: Iterable[object] = ()) -> App:
    """Load the plugins, connect, check (or, for the SQLite default, apply) migrations, and bootstrap admins.

    ``plugins`` are extra plugin objects registered after the installed ones (tests use this).
    Raises crm_core.db.DatabaseUnavailable or SchemaBehind, a SecretKeyError or FieldKeyError (see
    ``open_database``), bot.plugins.PluginError, or a ValidationError for an admin on an unknown
    platform, each with a message for the user.
    """
    settings = settings or Settings.from_env()
    i18n.set_default_language(settings.language)
    loaded = load_plugins(settings, plugins)
    engine, keys = open_database(settings, migrate=migrate)
    factory = db.session_factory(engine, Keyring(keys.keys))
    router = build_router(plugins=loaded)
    app = App(
        settings=settings,
        engine=engine,
        session_factory=factory,
        router=router,
        dispatcher=Dispatcher(router, factory, settings, loaded),
        plugins=loaded,
    )
    if settings.admins:
        _bootstrap_admins(app)
    return app


def _bootstrap_admins(app: App) -> None:
    # Processes started together (two web, two workers) may each create the same new admin at once:
    # the loser of that race gets a unique-key violation, and on a second try finds the winner's row.
    for attempt in (1, 2):
        try:
            with app.uow() as uow:
                users.bootstrap_admins(uow, list(app.settings.admins))
            return
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("another process created an admin at the same moment; trying again")
