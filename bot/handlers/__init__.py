"""Command handlers, one module per area. They see Requests and return Replies, never a platform SDK."""

from bot.handlers import admin, customers, deals, help, home, link, notes, predictions, recommendations, tickets

ALL_GROUPS = (
    help.group, customers.group, notes.group, deals.group, tickets.group, link.group, admin.group, predictions.group,
    recommendations.group, home.group,
)
