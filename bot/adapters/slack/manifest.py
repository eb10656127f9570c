"""The Slack app manifest (``slack-manifest.yml``), generated from the router so it lists every command.

Regenerate the file after adding a command (a test says when it is out of date)::

    python -m bot.adapters.slack.manifest > slack-manifest.yml
    python -m bot.adapters.slack.manifest --url https://crm.example.com          # your host
    python -m bot.adapters.slack.manifest --socket-mode                          # no public URL

Slash commands, interactivity and events all use one URL, ``<url>/slack/events``. Commands are
created with ``should_escape: true`` so mentions arrive as ``<@U123|name>`` (``/role @bob sales``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from bot.router import UMBRELLA, Router

PLACEHOLDER_URL = "https://chatcrm.example.com"
EVENTS_PATH = "/slack/events"
BOT_SCOPES = (
    "app_mentions:read",  # @chatcrm customer acme, in channels
    "chat:write",  # answers, notifications, digests
    "chat:write.public",  # digests to public channels the bot was not invited to
    "commands",  # the slash commands
    "files:read",  # a CSV or .xlsx shared with "import customers" in the app's DM
    "files:write",  # charts
    "im:history",  # commands typed in the app's DM (message.im)
    "channels:history",  # staff replies in ticket threads of a public support channel (message.channels)
    "groups:history",  # the same in a private support channel (message.groups)
    "users:read",  # a person's Slack locale (users.info), the language of their answers until they choose one
)
BOT_EVENTS = ("app_home_opened", "app_mention", "message.channels", "message.groups", "message.im")
DESCRIPTION_LIMIT = 140
USAGE_HINT_LIMIT = 100


def _subcommands(router: Router, name: str) -> list[str]:
    return sorted(
        " ".join(c.path[1:]) for c in router.commands if c.path[0] == name and len(c.path) > 1 and not c.hidden
    )


def _usage_hint(router: Router, name: str) -> str:
    command = router.get(name)
    own = command.usage.removeprefix(f"/{name}").strip() if command else ""
    hints = ([own] if own else []) + [f"{sub} …" for sub in _subcommands(router, name)]
    return " | ".join(hints)[:USAGE_HINT_LIMIT]


def _description(router: Router, name: str) -> str:
    command = router.get(name)
    subs = _subcommands(router, name)
    if command is None:
        return f"{name.capitalize()}: {', '.join(subs)}"[:DESCRIPTION_LIMIT]
    also = f" (also: {', '.join(subs)})" if subs else ""
    return (command.summary + also)[:DESCRIPTION_LIMIT]


def build_manifest(
    router: Router, *, url: str = PLACEHOLDER_URL, socket_mode: bool = False, name: str = "chatcrm"
) -> dict[str, Any]:
    events_url = url.rstrip("/") + EVENTS_PATH
    commands = [
        {
            "command": f"/{UMBRELLA}",
            "url": events_url,
            "description": "Any chatcrm command: /crm customer acme, /crm help",
            "usage_hint": "<command> [arguments]",
            "should_escape": True,
        }
    ]
    for top in router.top_level_names():
        entry = {
            "command": f"/{top}",
            "url": events_url,
            "description": _description(router, top),
            "should_escape": True,
        }
        hint = _usage_hint(router, top)
        if hint:
            entry["usage_hint"] = hint
        commands.append(entry)
    if socket_mode:
        # Socket Mode delivers everything over the WebSocket; Slack ignores (and needs no) URLs.
        for entry in commands:
            del entry["url"]
    event_subscriptions: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        event_subscriptions = {"request_url": events_url, **event_subscriptions}
        interactivity["request_url"] = events_url
    return {
        "display_information": {
            "name": name,
            "description": "The team's CRM: customers, deals and tickets, in Slack.",
            "background_color": "#1d4f91",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


_PLAIN = re.compile(r"[A-Za-z/][\w./:#-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS and "#" not in text:
        return text
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml_lines(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item) if not isinstance(item, dict | list) else '[]'}")
    else:
        for item in value:
            if isinstance(item, dict):
                inner = _yaml_lines(item, indent + 1)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return lines


def to_yaml(manifest: dict[str, Any]) -> str:
    header = (
        "# The chatcrm Slack app. Create it at https://api.slack.com/apps > Create New App > From a manifest.\n"
        "# Generated by `python -m bot.adapters.slack.manifest` from the command router; regenerate after\n"
        "# adding commands. Replace the host in the URLs with yours (or generate with --url / --socket-mode).\n"
    )
    return header + "\n".join(_yaml_lines(manifest, 0)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the Slack app manifest for chatcrm.")
    parser.add_argument("--url", default=PLACEHOLDER_URL, help="the public base URL of `chatcrm web`")
    parser.add_argument("--socket-mode", action="store_true", help="for `chatcrm worker` with SLACK_APP_TOKEN")
    parser.add_argument("--name", default="chatcrm", help="the app's name in Slack")
    args = parser.parse_args(argv)
    from bot.bootstrap import build_router

    sys.stdout.write(
        to_yaml(build_manifest(build_router(), url=args.url, socket_mode=args.socket_mode, name=args.name))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
