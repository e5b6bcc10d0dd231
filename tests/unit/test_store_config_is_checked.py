"""The `store:` section of lifeline.yaml: defaults for an old file, errors that name the line,
and a retention setting for a route that does not exist refused at start-up."""

from pathlib import Path

import pytest
import yaml

from services.conversation_store.app import build_app
from services.conversation_store.settings import ConversationStoreSettings
from services.runtime.config import ConfigError, load_config, parse_config

SHIPPED = Path(__file__).parents[2] / "lifeline.yaml"


def with_store(store: dict) -> str:
    data = yaml.safe_load(SHIPPED.read_text())
    data["store"] = store
    return yaml.safe_dump(data, sort_keys=False)


def test_the_shipped_file_and_an_empty_section_load_with_defaults():
    shipped = load_config(SHIPPED).store
    empty = parse_config(with_store({})).store
    assert empty.ingest.batch_size == 256 and empty.ingest.ack_wait_s == 30
    assert empty.retention.default_days is None and empty.retention.routes == {}
    assert shipped.ingest == empty.ingest and shipped.history == empty.history


def test_retention_per_route_is_read():
    store = parse_config(with_store({"retention": {"default_days": 365, "routes": {"chat": 30}}})).store
    assert (store.retention.default_days, store.retention.routes) == (365, {"chat": 30})


@pytest.mark.parametrize(("store", "complaint"), [
    ({"ingest": {"batch_size": 5000}}, "store.ingest.batch_size: Input should be less than or equal to 1000"),
    ({"retention": {"routes": {"chat": -1}}}, "store.retention.routes.chat"),
    ({"retension": {}}, "store.retension: Extra inputs are not permitted"),
])
def test_a_bad_store_section_is_named_with_its_line(store, complaint):
    with pytest.raises(ConfigError) as e:
        parse_config(with_store(store), source="lifeline.yaml")
    assert complaint in str(e.value) and "lifeline.yaml:" in str(e.value)


def test_retention_for_an_unknown_route_is_refused_at_start_up():
    config = parse_config(with_store({"retention": {"routes": {"caht": 30}}}))
    with pytest.raises(ConfigError, match="store.retention.routes: unknown route.*caht.*known: chat"):
        build_app(ConversationStoreSettings(instance="t"), config=config)
