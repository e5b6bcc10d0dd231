from services.runtime.settings import Settings


class NotifierSettings(Settings):
    # The status page listens on status_host:status_port (LIFELINE_STATUS_HOST, _PORT; port 0:
    # any free port). 127.0.0.1 by default: put it behind your proxy, or set 0.0.0.0.
    status_host: str = "127.0.0.1"
