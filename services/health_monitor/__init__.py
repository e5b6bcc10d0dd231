"""The health-monitor: provider health, service liveness, uptime accounting."""
