from services.runtime.settings import Settings


class CostGuardSettings(Settings):
    max_in_flight: int = 256  # reservation requests handled at once (LIFELINE_MAX_IN_FLIGHT)
    ledger_batch: int = 200  # events committed together at most (LIFELINE_LEDGER_BATCH)
    ledger_wait_s: float = 0.05  # longest wait to fill a batch (LIFELINE_LEDGER_WAIT_S)
