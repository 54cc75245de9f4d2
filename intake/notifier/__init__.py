"""Replies, outbox and digest (not built yet: see the notifier issue)."""
