"""Command handlers, one module per area. They see Requests and return Replies, never a platform SDK."""

from bot.handlers import (
    admin,
    campaigns,
    consent,
    customers,
    deals,
    digests,
    followups,
    help,
    home,
    link,
    notes,
    predictions,
    recommendations,
    segments,
    templates,
    tickets,
)

ALL_GROUPS = (
    help.group,
    customers.group,
    notes.group,
    deals.group,
    tickets.group,
    followups.group,
    link.group,
    recommendations.group,
    digests.group,
    templates.group,
    segments.group,
    campaigns.group,
    consent.group,
    predictions.group,
    admin.group,
    home.group,
)
