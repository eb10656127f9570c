"""Command handlers, one module per area. They see Requests and return Replies, never a platform SDK."""

from bot.handlers import admin, customers, deals, digests, followups, help, notes, templates

ALL_GROUPS = (help.group, customers.group, notes.group, deals.group, admin.group, followups.group, digests.group,
              templates.group)
