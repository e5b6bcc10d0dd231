from services.runtime.settings import Settings


class RouterSettings(Settings):
    # Requests this instance works on at once (LIFELINE_MAX_IN_FLIGHT). Waiting on vendors costs
    # only memory; 2,048 leaves room over the 1,000 one instance must hold (issue 3).
    max_in_flight: int = 2048
    # How long a request waits for its session's earlier turns before going on without them.
    history_timeout_ms: int = 200
    # How long a request's events (llm.attempt, llm.completed) may take to be stored before the
    # caller is answered anyway; longer than a stream leader election (a few seconds). What is
    # not stored by then is sent again in the background (services/router/events.py).
    event_store_timeout_s: float = 15.0
