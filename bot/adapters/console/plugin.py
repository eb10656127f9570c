"""The console as a chatcrm platform plugin: plain text, no edits, always able to print.

The console is a terminal on the server (``chatcrm console``, or a pipe): it needs no settings,
so its sender is always there and prints reminders and digests meant for console users.
"""

from __future__ import annotations

from bot.hookspecs import hookimpl
from bot.platform_spec import PlatformSpec
from crm_core.platforms import PlatformTraits

TRAITS = PlatformTraits(
    name="console",
    label="Console",
    text_format="text",
    template_variants=("text",),
    # Last resort for staff DMs: printed by a worker running beside the console.
    dm_priority=90,
    local=True,
    identity_pattern=r"^[\w.@+-]{1,64}$",
    identity_example="maria",
)


def _sender(_app):
    from bot.adapters.console.sender import ConsoleSender

    return ConsoleSender()


@hookimpl
def register_platforms() -> list[PlatformSpec]:
    return [PlatformSpec(traits=TRAITS, sender=_sender)]
