from services.runtime.settings import Settings


class RouterSettings(Settings):
    max_in_flight: int = 512  # requests this instance works on at once (LIFELINE_MAX_IN_FLIGHT)
