"""Setting Slack up: the environment variables and what they switch on, the refusal to serve HTTP
without a signing secret, and the shipped app manifest matching the commands."""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot import cli
from bot.adapters.slack import manifest as manifest_command
from bot.adapters.slack.manifest import BOT_EVENTS, build_manifest
from bot.adapters.slack.settings import DEFAULT_API_URL, SlackSettings
from bot.bootstrap import build_router
from bot.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]


def test_slack_is_off_without_a_bot_token():
    assert SlackSettings.from_env({}) is None
    assert SlackSettings.from_env({"SLACK_SIGNING_SECRET": "s"}) is None


def test_settings_from_the_environment():
    settings = SlackSettings.from_env(
        {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": "http://127.0.0.1:9/api"}
    )
    assert settings == SlackSettings(
        bot_token="xoxb-1", signing_secret="s", app_token=None, api_url="http://127.0.0.1:9/api/"
    )
    assert not settings.socket_mode
    assert SlackSettings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"}).api_url == DEFAULT_API_URL == "https://slack.com/api/"
    assert SlackSettings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}).socket_mode


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN is not"),
        ({"SLACK_BOT_TOKEN": "xapp-1"}, "must be the bot token"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "app-level token starting with xapp-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": "slack.com/api"}, "not an http"),
    ],
)
def test_wrong_settings_are_named(env, message):
    with pytest.raises(SettingsError, match=message):
        SlackSettings.from_env(env)


def test_chatcrm_web_refuses_slack_over_http_without_a_signing_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setenv("CHATCRM_LOG_FILE", str(tmp_path / "log"))
    # The command configures the root logger; give it back afterwards.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    assert cli.main(["web", "--host", "127.0.0.1", "--port", "0"]) == 1
    error = capsys.readouterr().err
    assert "SLACK_SIGNING_SECRET" in error and "will not serve /slack/events" in error


def test_the_shipped_manifest_lists_every_command():
    shipped = yaml.safe_load((ROOT / "slack-manifest.yml").read_text(encoding="utf-8"))
    router = build_router()
    # Regenerate with: python -m bot.adapters.slack.manifest > slack-manifest.yml
    assert shipped == build_manifest(router), "slack-manifest.yml is out of date"
    commands = {c["command"] for c in shipped["features"]["slash_commands"]}
    assert commands == {"/crm"} | {f"/{name}" for name in router.top_level_names()}
    urls = {c["url"] for c in shipped["features"]["slash_commands"]}
    settings = shipped["settings"]
    urls |= {settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]}
    assert urls == {"https://chatcrm.example.com/slack/events"}
    assert all(c["should_escape"] for c in shipped["features"]["slash_commands"])
    assert settings["event_subscriptions"]["bot_events"] == list(BOT_EVENTS)
    assert settings["socket_mode_enabled"] is False
    assert shipped["features"]["app_home"]["home_tab_enabled"] is True
    assert {"commands", "chat:write", "files:write", "im:history", "app_mentions:read"} <= set(
        shipped["oauth_config"]["scopes"]["bot"]
    )


def test_the_socket_mode_manifest_needs_no_urls():
    manifest = build_manifest(build_router(), socket_mode=True, url="https://ignored.example")
    assert "ignored.example" not in str(manifest)
    assert manifest["settings"]["socket_mode_enabled"] is True
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert manifest_command.main(["--socket-mode", "--url", "https://ignored.example"]) == 0
    assert yaml.safe_load(printed.getvalue()) == manifest


def test_importing_the_slack_adapter_connects_to_nothing():
    code = (
        "import bot.adapters.slack.http, bot.adapters.slack.socket_mode, bot.adapters.slack.sender, "
        "bot.adapters.slack.manifest, bot.platforms"
    )
    env = {
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "SLACK_API_URL": "http://127.0.0.1:1/api/",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "PATH": "",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
