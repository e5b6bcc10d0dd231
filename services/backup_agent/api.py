"""The backup agent from Python, in-process (drills, scripts): the same cycle the service runs and
the same restore the CLI runs, configured like the `lifeline` command (settings from the
environment, lifeline.yaml from LIFELINE_CONFIG) unless given.

    from services.backup_agent.api import restore, take
    reply = await take("drill data-loss")                  # BackupReply: snapshot_id, rows, verified, ...
    result = await restore(reply.snapshot_id, to="now")    # RestoreResult; result.figures()
"""

import os
from datetime import UTC, datetime

import nats
from nats.errors import NoServersError
from nats.js import JetStreamContext

from schemas.backup import BackupReply
from schemas.events import Event
from services.runtime.bus import publish_events
from services.runtime.config import LifelineConfig, load_config
from services.runtime.config.backup import BackupConfig

from .agent import BackupAgent
from .restore import RestoreFailed, RestoreResult, restore
from .settings import BackupAgentSettings
from .snapshot import Sources
from .targets import Target
from .wiring import key_of, make_target

__all__ = ["RestoreResult", "build_agent", "restore", "take"]


def build_agent(settings: BackupAgentSettings, cfg: BackupConfig, target: Target,
                js: JetStreamContext | None, *, source: str) -> BackupAgent:
    """A BackupAgent outside the service (events go to `js` when there is a bus)."""

    async def publish(subject: str, event: Event) -> None:
        if js is not None:
            await publish_events(js, [(subject, event.model_dump_json().encode(), event.id)])

    return BackupAgent(
        config=cfg, target=target, key=key_of(cfg, os.environ), clock=lambda: datetime.now(UTC),
        publish=publish, source=source, scratch_url=settings.backup_verify_db_url,
        scratch_dir=settings.scratch_dir,
        sources=lambda: Sources(db_url=settings.db_url, js=js, config_path=settings.config))


async def take(reason: str = "", *, verify: bool | None = None,
               settings: BackupAgentSettings | None = None,
               config: LifelineConfig | None = None, nc: nats.NATS | None = None) -> BackupReply:
    """One snapshot now (verified as `backup.verify` says unless `verify` is given), announced on
    the bus like the agent's own, retention applied. A failure is in `BackupReply.error`."""
    settings = settings or BackupAgentSettings()
    cfg = (config or load_config(settings.config)).backup
    own_nc = nc is None
    if nc is None:
        try:
            nc = await nats.connect(settings.nats_url, connect_timeout=2, max_reconnect_attempts=2)
        except (NoServersError, OSError):
            raise RestoreFailed(f"cannot reach NATS at {settings.nats_url}") from None
    try:
        async with make_target(cfg, settings, os.environ) as target:
            agent = build_agent(settings, cfg, target, nc.jetstream(),
                                source=f"backup-api/{settings.instance}")
            return await agent.cycle(reason=reason or "api", verify=verify)
    finally:
        if own_nc:
            await nc.drain()
