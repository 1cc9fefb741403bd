"""Alembic migrations of the project's own tables (``python -m bot.migrate``; see bot/migrate.py)."""
