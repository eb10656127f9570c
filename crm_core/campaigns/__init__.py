"""Campaigns to customers: segment filters, who a campaign reaches, rendering, delivery through the
outbox, reporting, live status cards and trigger campaigns (see each module's docstring)."""
