"""Bringing real data in: retail order files and customer lists, with a report of what was skipped."""
