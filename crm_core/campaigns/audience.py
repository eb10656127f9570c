"""Who a campaign reaches: the customers of its segment with consent, each on one platform.

A customer who opted in on several platforms is reached on the one its platform declaration
prefers (``campaign_priority``, crm_core.platforms). Both the start-time checks and the freezing of a run's recipients use
``eligible``, so what a manager is told before starting is what the run freezes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from crm_core import platforms
from crm_core.models import Campaign, Consent, ConsentStatus, Customer
from crm_core.services import segments


def customers_of(session: Session, campaign: Campaign) -> sa.Select:
    """The ids of the campaign's segment (every customer for ``segment=all``)."""
    return segments.customers_query(
        session, campaign.segment if campaign.segment else "", campaign.created_by_id
    ).correlate(None)


def eligible(
    session: Session, campaign: Campaign, customer_ids: sa.Select | None = None
) -> sa.Select | sa.CompoundSelect:
    """(customer_id, platform, conversation, conversation_index, language) of everyone the campaign may reach now."""
    if customer_ids is None:
        customer_ids = customers_of(session, campaign)
    # The id list is its own query, not correlated with the customers selected here.
    customer_ids = customer_ids.correlate(None)
    language = (
        sa.literal(campaign.language, sa.String)
        if campaign.language != "auto"
        else sa.func.coalesce(sa.func.nullif(sa.func.lower(Customer.language), ""), "en")
    )
    parts = []
    preferred = platforms.campaign_platforms()
    for index, platform in enumerate(preferred):
        chosen = (
            sa.select(
                Customer.id.label("customer_id"),
                Consent.platform.label("platform"),
                Consent.conversation.label("conversation"),
                Consent.conversation_index.label("conversation_index"),
                language.label("language"),
            )
            .join(
                Consent,
                sa.and_(
                    Consent.customer_id == Customer.id,
                    Consent.platform == platform,
                    Consent.status == ConsentStatus.OPTED_IN,
                ),
            )
            .where(Customer.id.in_(customer_ids))
        )
        if index:
            other = aliased(Consent)
            earlier = (
                sa.select(other.id)
                .where(
                    other.customer_id == Customer.id,
                    other.platform.in_(preferred[:index]),
                    other.status == ConsentStatus.OPTED_IN,
                )
                .exists()
            )
            chosen = chosen.where(~earlier)
        parts.append(chosen)
    if not parts:
        # No installed platform reaches customers: the same columns, no rows.
        return sa.select(
            Customer.id.label("customer_id"),
            sa.literal("", sa.String).label("platform"),
            sa.literal("", sa.String).label("conversation"),
            sa.literal("", sa.String).label("conversation_index"),
            language.label("language"),
        ).where(sa.false())
    return sa.union_all(*parts)


def eligible_count(session: Session, campaign: Campaign) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(eligible(session, campaign).subquery())).scalar_one()
