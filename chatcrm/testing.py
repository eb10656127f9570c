"""The testing kit for chatcrm plugin authors: a pytest plugin (entry point ``pytest11``: ``chatcrm``).

Installed with chatcrm, it gives every test suite these fixtures (all lazy: nothing is imported
or created until a test asks for one):

- ``chatcrm_database_url``: a migrated, empty database of the test's own. SQLite by default (a copy
  of a template migrated once per session); PostgreSQL when ``CHATCRM_TEST_DATABASE_URL`` names a
  server (``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``): a database per test, created
  from a migrated template database and dropped afterwards.
- ``chatcrm_plugins``: the plugins under test. Override it in your ``conftest.py``::

      @pytest.fixture
      def chatcrm_plugins():
          return ["my_plugin"]          # module paths or module objects

  A plugin that is already installed (found through its ``chatcrm`` entry point) is not
  registered a second time, so the same tests run before and after ``pip install``.
- ``chatcrm_env``: extra settings, as environment variables (``{"MY_PLUGIN_LIMIT": "5"}``);
  they reach the plugin as ``app.settings.extra``.
- ``chatcrm_app``: the application (``bot.bootstrap.App``) built with those plugins on that database.
- ``fake_chat``: a ``FakeChat``: create users with roles and run command lines through the real
  dispatcher; each answer has the ``Reply`` and its plain-text rendering (the console's).
- ``emitted_events``: an ``EventLog`` to assert on the domain events written to the ``events``
  table: ``marker = emitted_events.mark()``, act, then ``emitted_events.since(marker, "deal.won")``.

Run them with ``pytest`` once chatcrm is installed, or explicitly with ``pytest -p chatcrm.testing``.
The fixture names all start with ``chatcrm_`` (or are ``fake_chat``/``emitted_events``) so they do not
clash with a project's own fixtures.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from bot.bootstrap import App
    from bot.messages import Origin, Reply

# A PostgreSQL server to run the tests on instead of SQLite (an admin URL: databases are created there).
DATABASE_URL_VARIABLE = "CHATCRM_TEST_DATABASE_URL"

_counter = itertools.count()


# -- databases ----------------------------------------------------------------------------------


def _migrate(url: str) -> None:
    from crm_core import db

    engine = db.create_engine(url)
    try:
        db.upgrade(engine)
    finally:
        # Closing the last SQLite connection folds the WAL into the file, so a plain copy is complete.
        engine.dispose()


class _PostgresServer:
    """Creates and drops databases on the server named by CHATCRM_TEST_DATABASE_URL."""

    def __init__(self, admin_url: str):
        import sqlalchemy as sa

        from crm_core import db

        self.admin_url = db.normalize_url(admin_url)
        self.engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def url_for(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def create(self, name: str, template: str | None = None) -> str:
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url_for(name)

    def drop(self, name: str) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def chatcrm_database_template(tmp_path_factory) -> Iterator[tuple[str, Any]]:
    """A database migrated once per session: ("sqlite", path) or ("postgresql", (server, name))."""
    admin_url = os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    if not admin_url:
        path = tmp_path_factory.mktemp("chatcrm-template") / "template.db"
        _migrate(f"sqlite:///{path}")
        yield "sqlite", path
        return
    server = _PostgresServer(admin_url)
    name = f"chatcrm_kit_tpl_{os.getpid()}"
    _migrate(server.create(name))
    try:
        yield "postgresql", (server, name)
    finally:
        server.drop(name)
        server.engine.dispose()


@pytest.fixture
def chatcrm_database_url(chatcrm_database_template, tmp_path) -> Iterator[str]:
    """A migrated, empty database for this test only (a copy of the session's template)."""
    kind, template = chatcrm_database_template
    if kind == "sqlite":
        path = tmp_path / "chatcrm.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    server, template_name = template
    name = f"chatcrm_kit_{os.getpid()}_{next(_counter)}"
    url = server.create(name, template=template_name)
    try:
        yield url
    finally:
        server.drop(name)


# -- the application ----------------------------------------------------------------------------


@pytest.fixture
def chatcrm_plugins() -> list[Any]:
    """The plugins under test (module paths or objects). Override this fixture in your conftest.py."""
    return []


@pytest.fixture
def chatcrm_env() -> dict[str, str]:
    """Extra settings as environment variables (``app.settings.extra``). Override to configure your plugin."""
    return {}


def _installed_plugin_modules() -> set[str]:
    from bot.plugins import _entry_points

    return {entry_point.value.split(":", 1)[0] for entry_point, _, _ in _entry_points()}


def _plugin_objects(plugins: Iterable[Any]) -> list[object]:
    import importlib

    installed = _installed_plugin_modules()
    objects: list[object] = []
    for plugin in plugins:
        name = plugin if isinstance(plugin, str) else getattr(plugin, "__name__", None)
        # Installed with pip already: its entry point loads it, registering it again would clash.
        if name in installed:
            continue
        objects.append(importlib.import_module(plugin) if isinstance(plugin, str) else plugin)
    return objects


@pytest.fixture
def chatcrm_app(chatcrm_database_url, chatcrm_plugins, chatcrm_env) -> Iterator[App]:
    """chatcrm, with the installed plugins and ``chatcrm_plugins``, on ``chatcrm_database_url``."""
    from bot.bootstrap import build_app
    from bot.settings import Settings

    # A fixed key (personal data are encrypted with it; PostgreSQL does not start without one),
    # unless the plugin's tests set their own in chatcrm_env.
    env = {"CHATCRM_SECRET_KEY": "chatcrm-plugin-tests-secret-key", **chatcrm_env}
    settings = Settings.from_env({**env, "DATABASE_URL": chatcrm_database_url})
    app = build_app(settings, plugins=_plugin_objects(chatcrm_plugins))
    try:
        yield app
    finally:
        app.close()


# -- talking to it ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the dispatcher answered: the ``Reply``, and ``text``, its plain-text rendering."""

    reply: Reply

    @property
    def text(self) -> str:
        from bot.adapters.console.render import render_text

        return render_text(self.reply)

    @property
    def tone(self) -> str:
        return str(self.reply.tone)

    def __str__(self) -> str:
        return self.text


class FakeChat:
    """A chat with the real dispatcher: users with roles type command lines, and get Replies back."""

    def __init__(self, app: App, platform: str = "console"):
        self.app = app
        self.platform = platform

    def user(self, name: str, role: str | None = None, platform: str | None = None) -> Origin:
        """A CRM user called ``name`` with ``role`` ("sales", "viewer", …; None: no role) and a chat
        identity; returns the ``Origin`` to speak as them."""
        from bot.messages import Origin
        from crm_core.models import Role
        from crm_core.services import users

        platform = platform or self.platform
        external_id = name.lower().replace(" ", ".")
        with self.app.uow() as uow:
            users.ensure_user(
                uow, users.PlatformId(platform, external_id), display_name=name, role=Role(role) if role else None
            )
        return Origin(
            platform=platform,
            user_external_id=external_id,
            conversation=f"dm-{external_id}",
            is_private=True,
            display_name=name,
        )

    def say(self, who: Origin, line: str, **request_fields: Any) -> Answer:
        """Run ``line`` ("/quote acme WID-1 3") as ``who`` through the real dispatcher."""
        from bot.messages import Request

        return Answer(self.app.dispatcher.handle(Request(origin=who, text=line, **request_fields)))


@pytest.fixture
def fake_chat(chatcrm_app) -> FakeChat:
    """Users with roles, and command lines run through the real dispatcher of ``chatcrm_app``."""
    return FakeChat(chatcrm_app)


# -- domain events ------------------------------------------------------------------------------


class EventLog:
    """The domain events in the ``events`` table, read back for assertions.

    ``mark()`` returns a marker (the newest event id); ``since(marker, type)`` lists the events after
    it, oldest first, optionally only of some types; ``types(marker)`` lists just their types.
    """

    def __init__(self, app: App):
        self.app = app

    @staticmethod
    def _model() -> Any:
        # The events table is newer than some chatcrm versions: import only when asked.
        from crm_core.models import DomainEvent

        return DomainEvent

    def mark(self) -> int:
        import sqlalchemy as sa

        model = self._model()
        with self.app.uow() as uow:
            return uow.session.scalar(sa.select(sa.func.coalesce(sa.func.max(model.id), 0))) or 0

    def since(self, marker: int = 0, *types: str) -> list[Any]:
        import sqlalchemy as sa

        model = self._model()
        query = sa.select(model).where(model.id > marker)
        if types:
            query = query.where(model.type.in_(types))
        from crm_core.events import Event

        with self.app.uow() as uow:
            # What a listener would be handed (crm_core.events.Event), not the ORM rows.
            return [Event.from_row(row) for row in uow.session.scalars(query.order_by(model.id))]

    def types(self, marker: int = 0) -> list[str]:
        return [event.type for event in self.since(marker)]


@pytest.fixture
def emitted_events(chatcrm_app) -> EventLog:
    """Domain events written by the code under test: ``mark()``, act, ``since(marker, "deal.won")``."""
    return EventLog(chatcrm_app)
