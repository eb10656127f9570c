"""Slack as a chatcrm platform plugin: its traits, default rates, and what it plugs into web and worker.

Importing this module imports no Slack SDK: the factories import the adapter only when Slack is
configured (``SLACK_BOT_TOKEN``).
"""

from __future__ import annotations

from bot.hookspecs import hookimpl
from bot.platform_spec import PlatformSpec
from bot.rate_limit import PlatformLimits, Rate
from crm_core.platforms import PlatformTraits

TRAITS = PlatformTraits(
    name="slack",
    label="Slack",
    text_format="mrkdwn",
    template_variants=("mrkdwn", "text"),
    layout_format="blocks",
    can_edit=True,
    ephemeral=True,
    dm_priority=10,
    campaign_priority=20,
    consent=True,
    identity_pattern=r"^[UWB][A-Z0-9_]{1,30}$",
    identity_example="U123ABC",
    shared_conversation_pattern=r"^[CGD][A-Z0-9]{1,30}$",
    shared_conversation_example="C0123ABC",
)
# Slack allows about one message per second per channel.
LIMITS = PlatformLimits(per_chat=Rate(1, 1))


def _settings(app):
    from bot.adapters.slack.settings import SlackSettings

    return SlackSettings.from_env(app.settings.extra)


def _configured(settings) -> bool:
    return bool(settings.extra.get("SLACK_BOT_TOKEN"))


def _ticket_threads(settings):
    from bot.adapters.slack.settings import REPLIES, support_settings
    from bot.desk import TicketThreads

    channel, mode = support_settings(settings.extra)
    if channel is None:
        return None
    return TicketThreads(TRAITS.name, channel, replies=mode == REPLIES)


def _web_mounts(app):
    slack = _settings(app)
    # Slack over HTTP unless it is Socket Mode only (an app token and no signing secret).
    if slack is None or not (slack.signing_secret or not slack.socket_mode):
        return []
    from bot.adapters.slack.http import SlackWebMount

    return [SlackWebMount(app, slack)]


def _sender(app):
    slack = _settings(app)
    if slack is None:
        return None
    from bot.adapters.slack.sender import SlackSender

    return SlackSender(slack)


def _services(app):
    slack = _settings(app)
    if slack is None or not slack.socket_mode:
        return []
    from bot.adapters.slack.socket_mode import SlackSocketModeService

    return [SlackSocketModeService(app, slack)]


def _inbox_processor(app):
    slack = _settings(app)
    if slack is None:
        return None
    from bot.adapters.slack.runtime import SlackRuntime

    # Runs the deliveries a process kept in the inbox and did not finish (the worker's recovery);
    # connects to Slack on first use.
    return SlackRuntime(app, slack)


@hookimpl
def register_platforms() -> list[PlatformSpec]:
    return [
        PlatformSpec(
            traits=TRAITS,
            default_limits=LIMITS,
            configured=_configured,
            web_mounts=_web_mounts,
            sender=_sender,
            services=_services,
            ticket_threads=_ticket_threads,
            inbox_processor=_inbox_processor,
        )
    ]
