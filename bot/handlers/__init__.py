"""Command handlers, one module per area. They see Requests and return Replies, never a platform SDK."""

from bot.handlers import admin, customers, deals, help, home, notes

ALL_GROUPS = (help.group, customers.group, notes.group, deals.group, admin.group, home.group)
