"""The composition root: reads settings once and builds the engine, router, dispatcher and app.

Nothing connects to a database or network at import time; ``build_app`` does it, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.dispatch import Dispatcher
from bot.handlers import ALL_GROUPS
from bot.router import Router
from bot.settings import Settings
from crm_core import db
from crm_core.actor import SYSTEM, Actor
from crm_core.services import users
from crm_core.uow import UnitOfWork


@dataclass
class App:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    router: Router
    dispatcher: Dispatcher

    def uow(self, actor: Actor = SYSTEM) -> UnitOfWork:
        return UnitOfWork(self.session_factory, actor)

    def close(self) -> None:
        self.engine.dispose()


def build_router() -> Router:
    return Router(ALL_GROUPS)


def build_app(settings: Settings | None = None, *, migrate: bool | None = None) -> App:
    """Connect, check (or, for the SQLite default, apply) migrations, and bootstrap admins.

    Raises crm_core.db.DatabaseUnavailable or SchemaBehind with a message for the user.
    """
    settings = settings or Settings.from_env()
    engine = db.create_engine(settings.database_url)
    db.check_connection(engine)
    db.ensure_schema(engine, auto_upgrade=settings.is_sqlite if migrate is None else migrate)
    factory = db.session_factory(engine)
    router = build_router()
    app = App(
        settings=settings,
        engine=engine,
        session_factory=factory,
        router=router,
        dispatcher=Dispatcher(router, factory, settings),
    )
    if settings.admins:
        with app.uow() as uow:
            users.bootstrap_admins(uow, list(settings.admins))
    return app
