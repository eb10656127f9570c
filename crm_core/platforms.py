"""What the core knows about chat platforms: their names and declared traits, nothing more.

Core never names a platform. Each chat adapter declares its traits (the text format its messages
are written in, whether sent messages can be edited, whether it can DM staff, whether campaigns may
reach customers there) through the ``register_platforms`` hook, and the composition root records
them here with ``register``. Services then ask the declaration ("which platforms can edit a
message?") instead of keeping lists of platform names.

The registry is process-wide on purpose: scheduled tasks, SQL filters and template rendering run
deep in the core, far from the composition root, and the traits are static declarations of
installed code, identical for every app built in the process. Registering the same traits twice
is a no-op; registering different traits under one name is an error.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from crm_core.errors import ValidationError
from crm_core.i18n import _

# A platform name is what identities, consents and outbox rows store: short, lowercase, stable.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


@dataclass(frozen=True)
class PlatformTraits:
    """A platform's declaration of what it can do. Only ``name`` is required."""

    name: str
    # The markup its message text is written in: "mrkdwn", "html" or "text".
    text_format: str = "text"
    # Template formats that can give its text, best first (a plain-text variant always works).
    template_variants: tuple[str, ...] = ("text",)
    # A richer layout it can take besides text (Slack's "blocks"), rendered from its own template variant.
    layout_format: str | None = None
    # Sent messages can be edited in place (live status cards).
    can_edit: bool = False
    # Replies can be shown to one person only (Slack ephemeral messages).
    ephemeral: bool = False
    # Staff can be reached by a direct message here; lower is preferred when a user has several.
    dm_priority: int | None = None
    # Campaigns may reach consenting customers here; lower is preferred when a customer has several.
    campaign_priority: int | None = None
    # Customers can opt in to messages here.
    consent: bool = False
    # What a user id on this platform looks like, for validation and help texts.
    identity_pattern: str = r"^\S{1,64}$"
    identity_example: str = "id"
    # Conversations shared with a customer (a Slack Connect channel) for which an admin can record
    # consent: the form of such a conversation id, and an example. None: the platform has none.
    shared_conversation_pattern: str | None = None
    shared_conversation_example: str = ""
    # A terminal on the server (the console): identities are login names, given to demo users.
    local: bool = False
    # A human name for help texts ("Slack").
    label: str = ""
    # False for a delivery-only pseudo-platform (outgoing webhooks): nobody chats there, so it is
    # never offered for identities, DMs or consent, and ``names()`` leaves it out.
    chat: bool = True
    # Strict order per conversation: the outbox sends a row only when every earlier row of its
    # conversation is sent or has failed for good, so a row backing off holds back the later ones.
    ordered: bool = False

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"platform name {self.name!r}: use 1-20 lowercase letters, digits or _")

    @property
    def display(self) -> str:
        return self.label or self.name.capitalize()

    def valid_identity(self, external_id: str) -> bool:
        return bool(re.match(self.identity_pattern, external_id))


# Render "for no platform in particular": plain text, escaped by whoever shows it.
PLAIN = "plain"

_lock = threading.Lock()
_registry: dict[str, PlatformTraits] = {}


def register(traits: PlatformTraits) -> None:
    with _lock:
        known = _registry.get(traits.name)
        if known is not None and known != traits:
            raise ValueError(f"platform {traits.name!r} is registered twice with different traits")
        _registry[traits.name] = traits


def unregister(name: str) -> None:
    """Forget a platform (tests that register a platform of their own clean up with this)."""
    with _lock:
        _registry.pop(name, None)


def get(name: str) -> PlatformTraits | None:
    return _registry.get(name)


def traits(name: str) -> PlatformTraits:
    """The traits of a platform; a plain-text platform for a name nobody declared."""
    return _registry.get(name) or PlatformTraits(name=name if NAME.match(name) else "unknown")


def names() -> list[str]:
    """The chat platforms (delivery-only ones such as webhooks left out)."""
    return sorted(name for name, t in _registry.items() if t.chat)


def ordered_platforms() -> list[str]:
    return sorted(t.name for t in _registry.values() if t.ordered)


def validate(name: str) -> str:
    """A registered platform's name (normalised to lowercase); ValidationError naming the known ones."""
    candidate = (name or "").strip().lower()
    if candidate in names():
        return candidate
    known = ", ".join(names()) or _("none is installed")
    raise ValidationError(_("{value} is not a chat platform (known: {known})", value=repr(name), known=known))


def dm_platforms() -> list[str]:
    """Platforms staff can be DMed on, preferred first."""
    found = [t for t in _registry.values() if t.dm_priority is not None]
    return [t.name for t in sorted(found, key=lambda t: (t.dm_priority, t.name))]


def campaign_platforms() -> list[str]:
    """Platforms campaigns reach customers on, preferred first."""
    found = [t for t in _registry.values() if t.campaign_priority is not None]
    return [t.name for t in sorted(found, key=lambda t: (t.campaign_priority, t.name))]


def consent_platforms() -> list[str]:
    return sorted(t.name for t in _registry.values() if t.consent)


def shared_conversation_platforms() -> list[str]:
    """Platforms where an admin can record consent for a conversation shared with a customer."""
    return sorted(t.name for t in _registry.values() if t.consent and t.shared_conversation_pattern)


def editable_platforms() -> list[str]:
    return sorted(t.name for t in _registry.values() if t.can_edit)
