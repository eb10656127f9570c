"""Telegram as a chatcrm platform plugin: its traits, default rates, and what it plugs into web and worker.

Importing this module imports no Telegram SDK: the factories import the adapter only when Telegram
is configured (``TELEGRAM_BOT_TOKEN``).
"""

from __future__ import annotations

from bot.hookspecs import hookimpl
from bot.platform_spec import PlatformSpec
from bot.rate_limit import PlatformLimits, Rate
from crm_core.platforms import PlatformTraits

TRAITS = PlatformTraits(
    name="telegram",
    label="Telegram",
    text_format="html",
    template_variants=("html", "text"),
    can_edit=True,
    dm_priority=20,
    campaign_priority=10,
    consent=True,
    # Telegram user ids are numbers; chats (groups) are negative numbers.
    identity_pattern=r"^-?\d{1,20}$",
    identity_example="123456789",
)
# Telegram's published limits: 30 messages/s overall, 1/s per chat, 20/min per group (negative ids).
LIMITS = PlatformLimits(overall=Rate(30, 1), per_chat=Rate(1, 1), per_group=Rate(20, 60), group_prefix="-")


def _settings(app):
    if not app.settings.extra.get("TELEGRAM_BOT_TOKEN"):
        return None
    from bot.adapters.telegram.settings import TelegramSettings

    return TelegramSettings.from_env(app.settings.extra)


def _configured(settings) -> bool:
    return bool(settings.extra.get("TELEGRAM_BOT_TOKEN"))


def _web_mounts(app):
    telegram = _settings(app)
    if telegram is None or not telegram.webhook_secret:
        return []
    from bot.adapters.telegram.webhook import TelegramWebhook

    return [TelegramWebhook.build(app, telegram)]


def _sender(app):
    telegram = _settings(app)
    if telegram is None:
        return None
    from bot.adapters.telegram.sender import TelegramSender

    return TelegramSender(telegram, app.session_factory)


def _services(app):
    telegram = _settings(app)
    if telegram is None or telegram.uses_webhook:
        return []
    from bot.adapters.telegram.adapter import TelegramBot

    return [TelegramBot(app, telegram, webhook=False)]


def _inbox_processor(app):
    telegram = _settings(app)
    if telegram is None:
        return None
    from bot.adapters.telegram.adapter import TelegramBot

    # Only processes recorded updates (recovery); initialised on first use.
    return TelegramBot(app, telegram, webhook=True)


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
            inbox_processor=_inbox_processor,
        )
    ]
