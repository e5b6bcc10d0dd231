from services.runtime.settings import Settings


class ConversationStoreSettings(Settings):
    history_workers: int = 64  # history/purge requests served at once (LIFELINE_HISTORY_WORKERS)
    db_start_timeout: float = 60.0  # seconds to keep trying the database at start-up
    lag_interval: float = 5.0  # seconds between ingest-lag readings from JetStream
