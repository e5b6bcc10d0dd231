"""Deployment settings (not routing policy): URLs, ports, identities. From LIFELINE_* env vars."""

import os
import socket
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIFELINE_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "LIFELINE_NATS_URL"),
    )
    config: Path = Path("lifeline.yaml")  # LIFELINE_CONFIG
    home: Path = Path(".lifeline")  # embedded nats data, the SQLite database, logs
    db_url: str = ""  # LIFELINE_DB_URL; empty: SQLite at <home>/lifeline.db
    simulator_url: str = "http://127.0.0.1:8410"
    gateway_port: int = 8400
    status_port: int = 8401
    simulator_port: int = 8410
    health_port: int = 0  # this process's /healthz and /readyz; 0 = any free port
    health_host: str = "127.0.0.1"
    instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    heartbeat_interval: float = 2.0  # seconds
    graceful_timeout: float = 20.0  # seconds: in-flight work allowed to finish on SIGTERM
    otel_exporter: str = "none"  # none | console | otlp
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    # Message content (prompts, answers) never reaches the logs unless this is on.
    log_content: bool = False
    stream_replicas: int = Field(default=1, ge=1, le=5)  # JetStream replicas (3 on a cluster)

    @model_validator(mode="after")
    def _db_under_home(self) -> "Settings":
        if not self.db_url:
            self.db_url = f"sqlite+aiosqlite:///{self.home / 'lifeline.db'}"
        return self
