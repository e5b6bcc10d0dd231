from services.runtime.settings import Settings


class RouterSettings(Settings):
    # Requests this instance works on at once (LIFELINE_MAX_IN_FLIGHT). Waiting on vendors costs
    # only memory; 2,048 leaves room over the 1,000 one instance must hold (issue 3).
    max_in_flight: int = 2048
    # How long a request waits for its session's earlier turns before going on without them.
    history_timeout_ms: int = 200
