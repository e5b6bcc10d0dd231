from services.runtime.settings import Settings


class HealthMonitorSettings(Settings):
    pass
