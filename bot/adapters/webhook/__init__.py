"""Outgoing webhooks as a delivery-only platform: events become outbox rows that are POSTed, signed."""
