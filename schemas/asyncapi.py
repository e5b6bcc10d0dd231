"""The AsyncAPI document's source: every service's handlers and publishers, as built by the code.

`make docs` runs `faststream docs gen schemas.asyncapi:app --yaml --out schemas/asyncapi.yaml`;
tests/unit/test_asyncapi_is_current.py fails when the committed file is stale.
"""

from pathlib import Path
from typing import get_type_hints

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from schemas import subjects
from schemas.backup import (
    BackupReply, BackupRequest, ReplayReply, ReplayRequest, RestoreReply, RestoreRequest,
)
from schemas.completion import CompletionRequest, CompletionResult
from schemas.costs import ReserveReply, ReserveRequest, SpendQuery, SpendReport
from schemas.events import (
    HealthReport, HealthReportRequest, HistoryReply, HistoryRequest, LlmAttempt, LlmCompleted,
    PurgeReply, PurgeRequest,
)
from schemas.streaming import StreamChunk
from services.backup_agent.app import build_app as build_backup_agent
from services.conversation_store.app import build_app as build_conversation_store
from services.cost_guard.app import build_app as build_cost_guard
from services.gateway.app import build_app as build_gateway
from services.health_monitor.app import build_app as build_health_monitor
from services.notifier.app import build_app as build_notifier
from services.router.app import build_app as build_router
from services.runtime.config import load_config

_SHIPPED_CONFIG = Path(__file__).parents[1] / "lifeline.yaml"

# Handlers that parse their own bytes (so that bad input is answered, not dropped) take a raw
# NatsMessage, which FastStream would document as an empty payload. Their contract, by model
# (no reply model: a consumer that answers nobody, e.g. the store's ingest or the cost guard's
# ledger; for llm.stream the "reply" is each StreamChunk sent to the request's reply inbox):
RAW_HANDLERS: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    subjects.LLM_COMPLETE: (CompletionRequest, CompletionResult),
    subjects.LLM_STREAM: (CompletionRequest, StreamChunk),
    subjects.LLM_COMPLETED: (LlmCompleted, None),
    subjects.LLM_ATTEMPT: (LlmAttempt, None),
    subjects.CONVERSATION_HISTORY_GET: (HistoryRequest, HistoryReply),
    subjects.CONVERSATION_PURGE: (PurgeRequest, PurgeReply),
    subjects.HEALTH_REPORT: (HealthReportRequest, HealthReport),
    subjects.COST_RESERVE: (ReserveRequest, ReserveReply),
    subjects.COST_SPEND: (SpendQuery, SpendReport),
    subjects.CONVERSATION_REPLAY: (ReplayRequest, ReplayReply),
    subjects.COST_REPLAY: (ReplayRequest, ReplayReply),
    subjects.BACKUP_REQUEST: (BackupRequest, BackupReply),
    subjects.RESTORE_REQUEST: (RestoreRequest, RestoreReply),
}


def build_docs_app() -> FastStream:
    """Builds (never connects) each service and documents its subscribers and publishers."""
    broker = NatsBroker()
    config = load_config(_SHIPPED_CONFIG)
    services = []
    for build in (build_router, build_health_monitor, build_cost_guard, build_conversation_store,
                  build_backup_agent, build_notifier, build_gateway):
        settings_type = get_type_hints(build)["settings"]
        settings = settings_type(nats_url="nats://lifeline-bus:4222", instance="docs")
        services.append(build(settings, config=config))
    for service in services:
        for sub in service.router.subscribers:
            if sub.specification.config.include_in_schema:
                continue
            subject = sub.subject.broker_address
            if subject not in RAW_HANDLERS:
                raise LookupError(f"{service.name}: {subject} is left out of the schema but has "
                                  "no entry in RAW_HANDLERS: document it there")
            _document_raw_handler(broker, service.name, subject, getattr(sub, "queue", ""),
                                  sub.specification.config.description_)
        broker.include_router(service.router)
    return FastStream(broker, specification=AsyncAPI(
        title="Lifeline bus", version="0.1.0",
        description="The contract between Lifeline's services and the applications that use them.",
    ))


def _document_raw_handler(broker: NatsBroker, service: str, subject: str, queue: str,
                          description: str | None) -> None:
    request, reply = RAW_HANDLERS[subject]

    if reply is None:
        async def handler(body: request) -> None:  # type: ignore[valid-type]  # documentation only
            raise NotImplementedError
    else:
        async def handler(body: request) -> reply:  # type: ignore[valid-type,misc]
            raise NotImplementedError

    # Named per service: FastStream names a channel `<subject>:<HandlerName>`, so two services
    # consuming one subject (the store's and the cost guard's llm.completed) would share a name
    # and the second would overwrite the first in the document.
    handler.__name__ = f"{service}_{subject}".replace(".", "_").replace("-", "_")
    broker.subscriber(subject, queue=queue, description=description)(handler)


app = build_docs_app()
