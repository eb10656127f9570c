"""The Slack adapter's settings, read from ``App.settings.extra`` (the SLACK_* environment variables).

- ``SLACK_BOT_TOKEN`` (xoxb-…): the bot's Web API token; its presence turns Slack on.
- ``SLACK_SIGNING_SECRET``: verifies requests to ``POST /slack/events`` (HTTP mode).
- ``SLACK_APP_TOKEN`` (xapp-…): app-level token with connections:write; turns on Socket Mode in the worker.
- ``SLACK_API_URL``: the Web API base URL (default https://slack.com/api/); every Web API call,
  file uploads included, goes there.
- ``CHATCRM_SLACK_SUPPORT_CHANNEL`` (a channel id, C… or G…): every ticket gets a thread there with
  its customer's messages; unset, there are no ticket threads.
- ``CHATCRM_SLACK_SUPPORT_MODE``: what a staff reply in such a thread does. ``alerts`` (the default)
  keeps it as an internal note unless it starts with ``!reply`` (or `` /reply``); ``replies`` sends
  every reply to the customer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.settings import SettingsError
from crm_core.i18n import _

DEFAULT_API_URL = "https://slack.com/api/"
ALERTS = "alerts"
REPLIES = "replies"
SUPPORT_MODES = (ALERTS, REPLIES)
# A public (C…) or private (G…) channel's id, as Slack shows it under the channel's details.
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,30}$")


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None = None
    app_token: str | None = None
    api_url: str = DEFAULT_API_URL
    # The channel where every ticket gets a thread (None: no ticket threads), and whether a reply
    # there answers the customer ("replies") or stays internal unless prefixed ("alerts").
    support_channel: str | None = None
    support_mode: str = ALERTS

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackSettings | None:
        """The settings, or None when Slack is not configured (no SLACK_BOT_TOKEN). Raises SettingsError."""
        bot_token = (env.get("SLACK_BOT_TOKEN") or "").strip()
        app_token = (env.get("SLACK_APP_TOKEN") or "").strip() or None
        if not bot_token:
            if app_token:
                raise SettingsError(
                    _(
                        "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both "
                        "(the bot token, xoxb-…, is under OAuth & Permissions)"
                    )
                )
            return None
        if not bot_token.startswith("xoxb-"):
            raise SettingsError(
                _(
                    "SLACK_BOT_TOKEN must be the bot token, starting with xoxb- "
                    "(OAuth & Permissions > Bot User OAuth Token)"
                )
            )
        if app_token and not app_token.startswith("xapp-"):
            raise SettingsError(
                _(
                    "SLACK_APP_TOKEN must be an app-level token starting with xapp- "
                    "(Basic Information > App-Level Tokens, scope connections:write)"
                )
            )
        api_url = (env.get("SLACK_API_URL") or DEFAULT_API_URL).strip()
        if not api_url.startswith(("http://", "https://")):
            raise SettingsError(_("{setting} is not an http(s) URL", setting=f"SLACK_API_URL={api_url!r}"))
        channel, mode = support_settings(env)
        return cls(
            bot_token=bot_token,
            signing_secret=(env.get("SLACK_SIGNING_SECRET") or "").strip() or None,
            app_token=app_token,
            # slack_sdk joins method names onto the base URL, so it must end with a slash.
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            support_channel=channel,
            support_mode=mode,
        )

    def require_signing_secret(self) -> str:
        if not self.signing_secret:
            raise SettingsError(
                _(
                    "Slack over HTTP needs SLACK_SIGNING_SECRET (Basic Information > App Credentials > Signing Secret) "
                    "to verify that requests come from Slack; chatcrm web will not serve /slack/events without it. "
                    "To use Socket Mode instead, set SLACK_APP_TOKEN and run chatcrm worker."
                )
            )
        return self.signing_secret


def support_settings(env: Mapping[str, str]) -> tuple[str | None, str]:
    """CHATCRM_SLACK_SUPPORT_CHANNEL and CHATCRM_SLACK_SUPPORT_MODE, checked. Raises SettingsError."""
    channel = (env.get("CHATCRM_SLACK_SUPPORT_CHANNEL") or "").strip() or None
    if channel is not None and not _CHANNEL_ID.match(channel):
        raise SettingsError(
            _(
                "{setting} is not a Slack channel id: use the id like C0123ABCD (channel details > About, at the "
                "bottom), not its #name",
                setting=f"CHATCRM_SLACK_SUPPORT_CHANNEL={channel!r}",
            )
        )
    mode = (env.get("CHATCRM_SLACK_SUPPORT_MODE") or ALERTS).strip().lower()
    if mode not in SUPPORT_MODES:
        raise SettingsError(
            _(
                "{setting} is not a mode: use alerts (thread replies stay internal unless they start with !reply) "
                "or replies (every thread reply goes to the customer)",
                setting=f"CHATCRM_SLACK_SUPPORT_MODE={mode!r}",
            )
        )
    return channel, mode
