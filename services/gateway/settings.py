from services.runtime.settings import Settings


class GatewaySettings(Settings):
    # The HTTP port is Settings.gateway_port (LIFELINE_GATEWAY_PORT, 8400). Loopback by default,
    # as every other port here; 0.0.0.0 in a container.
    gateway_host: str = "127.0.0.1"  # LIFELINE_GATEWAY_HOST
