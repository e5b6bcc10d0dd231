"""The gateway: the OpenAI-compatible HTTP front door."""
