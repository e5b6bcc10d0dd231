"""The AsyncAPI document's source: every service's handlers and publishers, as built by the code.

`make docs` runs `faststream docs gen schemas.asyncapi:app --yaml --out schemas/asyncapi.yaml`;
tests/unit/test_asyncapi_is_current.py fails when the committed file is stale.
"""

from pathlib import Path

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from services.router.app import build_app as build_router
from services.router.settings import RouterSettings
from services.runtime.config import load_config

_SHIPPED_CONFIG = Path(__file__).parents[1] / "lifeline.yaml"


def build_docs_app() -> FastStream:
    """Builds (never connects) each service and merges their routes into one document."""
    broker = NatsBroker()
    config = load_config(_SHIPPED_CONFIG)
    settings = RouterSettings(nats_url="nats://lifeline-bus:4222", instance="docs")
    for service in (build_router(settings, config=config),):
        for sub in service.broker.subscribers:
            broker.subscribers.append(sub)
        for pub in service.broker.publishers:
            broker.publishers.append(pub)
    return FastStream(broker, specification=AsyncAPI(
        title="Lifeline bus", version="0.1.0",
        description="The contract between Lifeline's services and the applications that use them.",
    ))


app = build_docs_app()
