"""Alembic branch "notifier"."""
