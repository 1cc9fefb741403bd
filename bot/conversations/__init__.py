"""Conversation storage: a bounded hot tracker store (Redis) and an archive of finished sessions (SQL)."""
