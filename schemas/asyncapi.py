"""The AsyncAPI document's source: every service's handlers and publishers, as built by the code.

`make docs` runs `faststream docs gen schemas.asyncapi:app --yaml --out schemas/asyncapi.yaml`;
tests/unit/test_asyncapi_is_current.py fails when the committed file is stale.
"""

from pathlib import Path

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from schemas import subjects
from schemas.completion import CompletionRequest, CompletionResult
from services.router.app import build_app as build_router
from services.router.settings import RouterSettings
from services.runtime.config import load_config

_SHIPPED_CONFIG = Path(__file__).parents[1] / "lifeline.yaml"

# Handlers that parse their own bytes (so that bad input is answered, not dropped) take a raw
# NatsMessage, which FastStream would document as an empty payload. Their contract, by model:
RAW_HANDLERS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    subjects.LLM_COMPLETE: (CompletionRequest, CompletionResult),
}


def build_docs_app() -> FastStream:
    """Builds (never connects) each service and documents its subscribers and publishers."""
    broker = NatsBroker()
    config = load_config(_SHIPPED_CONFIG)
    settings = RouterSettings(nats_url="nats://lifeline-bus:4222", instance="docs")
    for service in (build_router(settings, config=config),):
        for sub in service.router.subscribers:
            if sub.specification.config.include_in_schema:
                continue
            subject = sub.subject.broker_address
            if subject not in RAW_HANDLERS:
                raise LookupError(f"{service.name}: {subject} is left out of the schema but has "
                                  "no entry in RAW_HANDLERS: document it there")
            _document_raw_handler(broker, subject, sub.queue, sub.specification.config.description_)
        broker.include_router(service.router)
    return FastStream(broker, specification=AsyncAPI(
        title="Lifeline bus", version="0.1.0",
        description="The contract between Lifeline's services and the applications that use them.",
    ))


def _document_raw_handler(broker: NatsBroker, subject: str, queue: str, description: str | None) -> None:
    request, reply = RAW_HANDLERS[subject]

    async def handler(body: request) -> reply:  # type: ignore[valid-type]  # documentation only
        raise NotImplementedError

    handler.__name__ = subject.replace(".", "_")
    broker.subscriber(subject, queue=queue, description=description)(handler)


app = build_docs_app()
