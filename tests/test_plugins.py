"""The plugin system: built-ins load through the same hooks as a third-party plugin, a plugin adds a
command, a permission, a job, a route and a card section without editing chatcrm, and a fourth chat
platform that lives in one folder (tests/fakechat) works with commands, outbox sends and consent."""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime

import httpx
import pytest
import time_machine

from bot.args import rest
from bot.bootstrap import build_app
from bot.cli import main as cli_main
from bot.hookspecs import hookimpl
from bot.messages import Origin, Reply, Request, Section
from bot.plugin_types import JobDefinition, PermissionGrant
from bot.plugins import PluginError
from bot.router import CommandGroup
from crm_core import outbox, platforms
from crm_core.models import Role
from crm_core.scheduling import Once, run_due, schedule
from crm_core.services import consent, customers, users
from tests.fakechat import FakeChatSender
from tests.fakes.worker import chat_worker, wait_until
from tests.support import TEST_SECRET_KEY, Chat

BUILTIN_PLATFORMS = {"slack", "telegram", "console"}


def _greeting_plugin(calls: list) -> types.SimpleNamespace:
    """A plugin object (as a third party would write it) contributing to every kind of hook."""
    group = CommandGroup()

    @group.command("greet", summary="Say hello to a customer", permission="greetings.send", params=[rest("name")])
    def greet(req: Request, ctx) -> Reply:
        found = customers.resolve_customer(ctx.uow, req.args["name"])
        return Reply(text=f"Hello, {found.name}!")

    def remember(run) -> None:
        calls.append(run.args)

    async def ping(_request):
        from starlette.responses import JSONResponse

        return JSONResponse({"pong": True})

    from starlette.routing import Route

    plugin = types.SimpleNamespace(
        register_commands=hookimpl(lambda: [group]),
        register_permissions=hookimpl(
            lambda: [PermissionGrant("greetings.send", "greet customers", roles=[Role.SALES.value])]
        ),
        register_jobs=hookimpl(lambda: [JobDefinition("greetings.remember", remember, "note a call")]),
        register_routes=hookimpl(lambda: [Route("/plugins/greet/ping", ping)]),
        card_sections=hookimpl(lambda customer: Section(title="Greetings", text=f"Say hi to {customer.name}")),
    )
    plugin.__name__ = "greetings"
    return plugin


def test_the_built_ins_are_plugins_loaded_through_entry_points(app):
    by_name = {info.name: info for info in app.plugins.infos}
    assert {"slack", "telegram", "console", "customers", "deals", "tickets", "roles"} <= set(by_name)
    assert all(info.source == "built-in" for info in by_name.values())
    assert by_name["slack"].hooks == ("register_platforms",)
    assert "register_jobs" in by_name["campaigns"].hooks and "register_outbox_kinds" in by_name["campaigns"].hooks
    assert BUILTIN_PLATFORMS <= set(app.plugins.platforms)
    assert {"digests.send", "followups.fire", "campaigns.run", "mining.nightly", "outbox.purge"} <= set(
        app.plugins.jobs
    )
    assert set(app.plugins.outbox_kinds) == {
        "campaign",
        "support.thread.alerts",
        "support.thread.replies",
        "support.thread_mirror.alerts",
        "support.thread_mirror.replies",
    }
    # The support desk mirrors tickets' answers and changes into their threads from the event stream.
    assert "on_event" in by_name["support"].hooks


def test_registering_a_module_examines_only_its_marked_functions(monkeypatch):
    # pluggy looks every name of a plugin up with inspect.getattr_static; for a module, only names
    # holding a function with the hookimpl marker (or a method wrapper) can be hooks, and only those
    # are looked up: the same hooks are found, without a lookup for each import and constant.
    import inspect

    from bot.plugins import Plugins
    from bot.settings import Settings

    module = types.ModuleType("lean_plugin")
    module.register_commands = hookimpl(lambda: [])
    module.register_permissions = staticmethod(hookimpl(lambda: []))
    module.helper = lambda: None  # a function, but no hook
    module.Thing = type("Thing", (), {})
    module.LIMIT = 5
    module.sys = sys
    looked_up = []
    getattr_static = inspect.getattr_static

    def counted(obj, name, *default):
        if obj is module:
            looked_up.append(name)
        return getattr_static(obj, name, *default)

    monkeypatch.setattr(inspect, "getattr_static", counted)
    loaded = Plugins.load(Settings(database_url="sqlite://", secret_key=TEST_SECRET_KEY), [module])
    [info] = [info for info in loaded.infos if info.name == "lean_plugin"]
    assert info.hooks == ("register_commands", "register_permissions")
    assert set(looked_up) == {"register_commands", "register_permissions"}


def test_chatcrm_plugins_lists_every_plugin_with_version_and_hooks(capsys):
    assert cli_main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("campaigns "))
    assert "built-in" in line and "register_outbox_kinds" in line and "0.1.0" in line


def test_a_plugin_adds_a_command_permission_job_route_and_card_section(settings):
    calls: list = []
    app = build_app(settings, plugins=[_greeting_plugin(calls)])
    try:
        chat = Chat(app)
        rep, viewer = chat.user("Rita Rep", Role.SALES), chat.user("Vic Viewer", Role.VIEWER)
        with app.uow() as uow:
            customers.create_customer(uow, "Acme GmbH")
        assert chat.say(rep, "/greet acme").reply.text == "Hello, Acme GmbH!"
        # Deny by default: the plugin granted its permission to sales only.
        refused = chat.say(viewer, "/greet acme").reply
        assert "can't use /greet" in refused.text
        # The card shows the plugin's section.
        card = chat.say(rep, "/customer acme").reply
        assert any(s.title == "Greetings" and "Acme GmbH" in s.text for s in card.sections)
        # Its job is scheduled by name and run by the registry like a built-in one.
        with time_machine.travel(datetime(2026, 6, 1, 12, tzinfo=UTC), tick=False):
            with app.uow() as uow:
                schedule(
                    uow, "greet:1", "greetings.remember", Once(datetime(2026, 6, 1, 11, tzinfo=UTC)), args={"n": 1}
                )
            [outcome] = run_due(app.session_factory, tasks=app.plugins.tasks)
        assert outcome.status == "ok" and calls == [{"n": 1}]
        # Its route is served by chatcrm web's ASGI app.
        from bot.web import build_web_app

        web = build_web_app(app, [])
        import asyncio

        async def get() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://test") as client:
                return await client.get("/plugins/greet/ping")

        response = asyncio.run(get())
        assert response.status_code == 200 and response.json() == {"pong": True}
    finally:
        app.close()


def test_a_card_section_plugin_that_raises_is_left_off_and_the_card_still_shows(settings, caplog):
    def broken(customer):
        raise RuntimeError("plugin bug")

    plugin = types.SimpleNamespace(card_sections=hookimpl(broken))
    plugin.__name__ = "broken_card"
    app = build_app(settings, plugins=[plugin])
    try:
        chat = Chat(app)
        rep = chat.user("Rita Rep", Role.SALES)
        with app.uow() as uow:
            customers.create_customer(uow, "Acme GmbH")
        reply = chat.say(rep, "/customer acme").reply
        assert reply.title == "Acme GmbH"
        assert any("card_sections of plugin broken_card failed" in r.getMessage() for r in caplog.records)
    finally:
        app.close()


def test_plugin_errors_are_named(settings):
    clash = CommandGroup()
    clash.command("customer", summary="mine", permission="help")(lambda req, ctx: Reply(text="x"))
    plugin = types.SimpleNamespace(register_commands=hookimpl(lambda: [clash]))
    plugin.__name__ = "clashing"
    with pytest.raises(PluginError, match="/customer is registered twice"):
        build_app(settings, plugins=[plugin])
    unknown = CommandGroup()
    unknown.command("secret", summary="x", permission="secrets.read")(lambda req, ctx: Reply(text="x"))
    plugin = types.SimpleNamespace(register_commands=hookimpl(lambda: [unknown]))
    plugin.__name__ = "no_permission"
    with pytest.raises(PluginError, match="secrets.read"):
        build_app(settings, plugins=[plugin])


def test_chatcrm_plugins_loads_modules_named_in_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("CHATCRM_PLUGINS", "tests.fakechat")
    assert cli_main(["plugins"]) == 0
    assert any(
        row.startswith("tests.fakechat ") and "CHATCRM_PLUGINS" in row for row in capsys.readouterr().out.splitlines()
    )
    monkeypatch.setenv("CHATCRM_PLUGINS", "no_such_module_anywhere")
    assert cli_main(["plugins"]) == 1
    assert "CHATCRM_PLUGINS: 'no_such_module_anywhere' cannot be imported" in capsys.readouterr().err


@pytest.fixture
def fakechat_app(database_url):
    from bot.settings import Settings

    app = build_app(
        Settings(
            database_url=database_url,
            secret_key=TEST_SECRET_KEY,
            plugins=("tests.fakechat",),
            extra={"FAKECHAT_TOKEN": "t"},
        )
    )
    FakeChatSender.sent.clear()
    yield app
    app.close()
    platforms.unregister("fakechat")


def test_a_fourth_platform_in_one_folder_serves_commands_sends_and_consent(fakechat_app):
    app = fakechat_app
    assert sys.modules["tests.fakechat"].TRAITS.name == "fakechat"
    from bot.platforms import configured_platforms

    assert "fakechat" in configured_platforms(app)
    # Commands: a user with an identity on the new platform is recognised and served.
    with app.uow() as uow:
        users.ensure_user(uow, users.parse_platform_id("fakechat:fc-7"), display_name="Fay", role=Role.SALES)
        acme = customers.create_customer(uow, "Acme GmbH").id
    origin = Origin(platform="fakechat", user_external_id="fc-7", conversation="fc-7", is_private=True)
    reply = app.dispatcher.handle(Request(origin=origin, text="/customer acme"))
    assert reply.title == "Acme GmbH"
    # Its identity form is checked where people type ids.
    with pytest.raises(Exception, match="not a FakeChat id"):
        users.parse_platform_id("fakechat:seven")
    # Staff DMs prefer it, as its traits declare.
    with app.uow() as uow:
        user = users.user_for_identity(uow, users.PlatformId("fakechat", "fc-7"))
        assert users.dm_address(user).platform == "fakechat"
        # Consent: customers can opt in on it, and campaigns reach them there first.
        consent.opt_in(uow, acme, "fakechat", "fc-99", "test")
        assert "fakechat" in platforms.campaign_platforms()[:1]
        outbox.enqueue(
            uow,
            idempotency_key="fc-hello",
            kind="test",
            platform="fakechat",
            conversation="fc-99",
            payload={"formatted_text": "Hello from the outbox"},
        )
    # Outbox sends go through the platform's own sender, under its declared limits.
    with chat_worker(app, None):
        assert wait_until(lambda: len(FakeChatSender.sent) == 1)
    assert FakeChatSender.sent[0].conversation == "fc-99"
    assert FakeChatSender.sent[0].formatted_text == "Hello from the outbox"
