"""The backup-agent: snapshots verified by restoring them, retention, restore, point-in-time recovery."""
