"""What one recipient of a campaign receives: their template context and the rendered message.

The same code renders the preview, the start-time check over every recipient, the test send to
the author and, right before each message goes out, the message itself, so what a preview
shows is what the customer gets. Contexts are built in bulk (a few queries per thousand
customers) because a start-time check covers the whole segment.

A template sees ``customer`` (id, name, first_name, email, country, language, ltv, orders,
last_order, last_product, owner.name, tags), ``campaign.name`` and ``event`` (``kind`` and, for
a ticket trigger, ``ticket.id``/``ticket.subject``; both None otherwise).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import i18n
from crm_core.i18n import N_, _
from crm_core.models import Campaign, Customer, CustomerTag, Order, OrderKind, OrderLine, Product, Ticket, User
from crm_core.money import format_totals
from crm_core.outbox_payload import MessagePayload, PayloadButton
from crm_core.services.orders import lifetime_values
from crm_core.templating import MessageRenderer, Rendered, TemplateRefused, kinds

CHUNK = 1000
UNSUBSCRIBE_COMMAND = "/stop"
UNSUBSCRIBE_LABEL = N_("Unsubscribe")


@dataclass(frozen=True)
class Recipient:
    """Who a message is for and where it goes."""

    customer_id: int
    platform: str
    conversation: str
    language: str
    event_key: str | None = None
    recipient_id: int | None = None


def _first_name(name: str) -> str:
    parts = name.split()
    return parts[0] if parts else name


def recipient_language(campaign: Campaign, customer_language: str | None) -> str:
    """The language a customer gets the campaign in (as crm_core.campaigns.audience.eligible chooses it)."""
    return campaign.language if campaign.language != "auto" else ((customer_language or "").lower() or "en")


def contexts(
    session: Session, campaign: Campaign, customer_ids: Iterable[int], currency: str = "EUR"
) -> dict[int, dict[str, Any]]:
    """Template contexts (without ``event``) for many customers, a few queries per ``CHUNK``."""
    ids = list(dict.fromkeys(customer_ids))
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = session.execute(
            sa.select(
                Customer.id,
                Customer.name,
                Customer.email,
                Customer.country,
                Customer.language,
                Customer.lifetime_value_cents,
                Customer.order_count,
                Customer.last_order_at,
                User.name,
            )
            .outerjoin(User, User.id == Customer.owner_id)
            .where(Customer.id.in_(chunk))
        ).all()
        tags: dict[int, list[str]] = {}
        for customer_id, tag in session.execute(
            sa.select(CustomerTag.customer_id, CustomerTag.tag)
            .where(CustomerTag.customer_id.in_(chunk))
            .order_by(CustomerTag.tag)
        ):
            tags.setdefault(customer_id, []).append(tag)
        last_products = _last_products(session, chunk)
        values = lifetime_values(session, chunk)
        for cid, name, email, country, language, _ltv, orders, last_order_at, owner in rows:
            found[cid] = {
                "customer": {
                    "id": cid,
                    "name": name,
                    "first_name": _first_name(name),
                    "email": email,
                    "country": country,
                    "language": language,
                    # In the orders' own currencies (the company currency only labels a zero), written
                    # the way the recipient's language writes amounts.
                    "ltv": _totals_in(values.get(cid, {}), currency, recipient_language(campaign, language)),
                    "orders": orders or 0,
                    "last_order": last_order_at.date().isoformat() if last_order_at else None,
                    "last_product": last_products.get(cid),
                    "owner": {"name": owner},
                    "tags": tags.get(cid, []),
                },
                "campaign": {"name": campaign.name},
            }
    return found


def _totals_in(amounts: dict[str, int], currency: str, language: str) -> str:
    with i18n.use_language(language):
        return format_totals(amounts, currency)


def _last_products(session: Session, customer_ids: Sequence[int]) -> dict[int, str]:
    """Each customer's most recently bought product (latest purchase, then its first line)."""
    ranked = (
        sa.select(
            Order.customer_id.label("customer_id"),
            Product.name.label("product"),
            sa.func.row_number()
            .over(partition_by=Order.customer_id, order_by=(Order.ordered_at.desc(), Order.id.desc(), OrderLine.id))
            .label("rn"),
        )
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Order.customer_id.in_(customer_ids), Order.kind == OrderKind.PURCHASE)
        .subquery()
    )
    return dict(session.execute(sa.select(ranked.c.customer_id, ranked.c.product).where(ranked.c.rn == 1)).all())


def event_context(session: Session, event_key: str | None) -> dict[str, Any]:
    if event_key is None:
        return {"kind": None, "ticket": None}
    if event_key.startswith("ticket:"):
        ticket = session.get(Ticket, int(event_key.split(":", 1)[1]))
        return {
            "kind": "ticket_resolved",
            "ticket": {"id": ticket.id, "subject": ticket.subject} if ticket is not None else None,
        }
    return {"kind": event_key, "ticket": None}


def buttons(language: str) -> tuple[PayloadButton, ...]:
    """Under every campaign message: the unsubscribe button (``/stop`` works typed, too)."""
    with i18n.use_language(language):
        return (PayloadButton(_(UNSUBSCRIBE_LABEL), UNSUBSCRIBE_COMMAND),)


class CampaignRenderer:
    """Renders a campaign's template for recipients, choosing the variants once per platform and language."""

    def __init__(self, session: Session, campaign: Campaign):
        if campaign.template not in kinds(session):
            raise TemplateRefused(_("there is no template {name}", name=repr(campaign.template)))
        self.session, self.campaign = session, campaign
        self._renderers: dict[tuple[str, str], MessageRenderer] = {}

    def render(self, recipient: Recipient, context: dict[str, Any]) -> Rendered:
        key = (recipient.platform, recipient.language)
        if key not in self._renderers:
            self._renderers[key] = MessageRenderer(
                self.session, self.campaign.template, recipient.platform, recipient.language, strict=True
            )
        # The recipient's language for what the template's filters write (amounts: ``money``).
        with i18n.use_language(recipient.language):
            return self._renderers[key]({**context, "event": event_context(self.session, recipient.event_key)})

    def payload(self, recipient: Recipient, context: dict[str, Any], *, unsubscribe: bool = True) -> MessagePayload:
        """The outbox payload for this recipient: the message and (unless a test send) its unsubscribe button."""
        return self.render(recipient, context).payload(buttons=buttons(recipient.language) if unsubscribe else ())


_TAG = re.compile(r"<[^>]+>")


def readable(rendered: Rendered) -> str:
    """A rendered message as readable text in any chat (previews): Telegram HTML tags dropped and
    entities decoded; mrkdwn keeps its marks, which Slack shows as formatting."""
    if rendered.format == "html":
        return html.unescape(_TAG.sub("", rendered.text))
    if rendered.format == "mrkdwn":
        return rendered.text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return rendered.text


def template_exists(session: Session, name: str) -> bool:
    return name in kinds(session)
