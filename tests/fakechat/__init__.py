"""A fourth chat platform, "fakechat", as a plugin that lives entirely in this folder.

It exists to prove that a platform is one folder plus one registration: it declares its traits,
rate limits and sender through ``register_platforms``, and nothing outside this folder names it.
Its sender records what it was asked to send.
"""

from __future__ import annotations

from bot.delivery import OutboundMessage
from bot.hookspecs import hookimpl
from bot.platform_spec import PlatformSpec
from bot.rate_limit import PlatformLimits, Rate
from crm_core.platforms import PlatformTraits

TRAITS = PlatformTraits(
    name="fakechat",
    label="FakeChat",
    text_format="text",
    can_edit=False,
    dm_priority=5,
    campaign_priority=1,
    consent=True,
    identity_pattern=r"^fc-\d+$",
    identity_example="fc-42",
)


class FakeChatSender:
    """Records every message; answers like a platform that accepted it."""

    platform = "fakechat"
    sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> str:
        FakeChatSender.sent.append(message)
        return f"fc-msg-{len(FakeChatSender.sent)}"


@hookimpl
def register_platforms() -> list[PlatformSpec]:
    return [
        PlatformSpec(
            traits=TRAITS,
            default_limits=PlatformLimits(overall=Rate(50, 1)),
            configured=lambda settings: bool(settings.extra.get("FAKECHAT_TOKEN")),
            sender=lambda app: FakeChatSender(),
        )
    ]
