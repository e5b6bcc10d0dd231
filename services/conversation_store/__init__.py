"""The conversation-store: every conversation turn in our own database; history, export, purge."""
