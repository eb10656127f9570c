"""The plugin's nightly job: remind a rep of a quote that led to no order within a week.

Every morning it looks at the quotes logged (as notes starting "Quote: ") between ``days`` and
``days + 1`` days before the run, and DMs whoever logged each one, unless the customer has ordered
since. The outbox key is the quote's note id, so a retried or repeated run reminds once.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from crm_core import outbox
from crm_core.models import Interaction, Order
from crm_core.outbox_payload import MessagePayload, PayloadButton
from crm_core.scheduling import JobRun
from crm_core.services import users

QUOTE_PREFIX = "Quote: "
DAYS_SETTING = "CHATCRM_EXAMPLE_QUOTE_FOLLOWUP_DAYS"


def remind_stale_quotes(run: JobRun) -> None:
    days = int(run.args.get("days", 7))
    until = run.fire_time - timedelta(days=days)
    since = until - timedelta(days=1)
    ordered_since = (
        sa.select(Order.id)
        .where(Order.customer_id == Interaction.customer_id, Order.ordered_at >= Interaction.occurred_at)
        .exists()
    )
    with run.uow() as uow:
        # Note texts are encrypted at rest, so the quotes are told apart after reading: the day's
        # notes by a rep, with no order since, are few.
        notes = uow.session.scalars(
            sa.select(Interaction).where(
                Interaction.occurred_at >= since,
                Interaction.occurred_at < until,
                Interaction.user_id.is_not(None),
                ~ordered_since,
            )
        ).all()
        for quote in (note for note in notes if (note.text or "").startswith(QUOTE_PREFIX)):
            address = users.dm_address(quote.user) if quote.user is not None and quote.user.active else None
            if address is None:
                continue
            text = (
                f"A week ago you quoted {quote.text.removeprefix(QUOTE_PREFIX)} for customer "
                f"#{quote.customer_id}, and no order has come in since. Time to follow up?"
            )
            outbox.enqueue(
                uow,
                idempotency_key=f"example:quote-followup:{quote.id}",
                kind="notification",
                platform=address.platform,
                conversation=address.external_id,
                payload=MessagePayload(
                    formatted_text=text,
                    format="text",
                    buttons=(PayloadButton("Open customer", f"/customer #{quote.customer_id}"),),
                ),
                user_id=quote.user_id,
                customer_id=quote.customer_id,
            )
