"""The `tiers:` block: defaults an old file lacks, per-route overrides, and clear errors."""

from pathlib import Path

import pytest

from services.runtime.config import ConfigError, load_config, parse_config

SHIPPED = (Path(__file__).parents[2] / "lifeline.yaml").read_text()


def with_tiers(block: str) -> str:
    start = SHIPPED.index("tiers:\n")
    end = SHIPPED.index("# --- Health monitor")
    return SHIPPED[:start] + block + "\n" + SHIPPED[end:]


def test_the_shipped_file_and_one_without_a_tiers_block_both_load():
    shipped = load_config(Path(__file__).parents[2] / "lifeline.yaml").tiers
    assert shipped.faq_file == "faq.yaml" and shipped.cache.enabled and shipped.queue.max_deliver == 5
    bare = parse_config(with_tiers("")).tiers
    assert bare.cache.ttl_s == 3600 and bare.queue.start_rate == 2.0


def test_a_route_can_turn_its_cache_off_and_its_static_answers_off():
    tiers = parse_config(with_tiers(
        "tiers:\n  routes:\n    chat: {cache: {enabled: false}, static_answers: false}\n")).tiers
    assert not tiers.cache_for("chat").enabled and tiers.cache_for("other").enabled
    assert not tiers.static_answers_for("chat") and tiers.static_answers_for("other")


def test_errors_name_the_line_and_field():
    text = with_tiers("tiers:\n  cache:\n    ttl_s: 999999999\n  queue:\n    start_rate: 0\n")
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    line = text[: text.index("ttl_s")].count("\n") + 1
    assert f"lifeline.yaml:{line}: tiers.cache.ttl_s: Input should be less than or equal" in str(e.value)
    assert "tiers.queue.start_rate: Input should be greater than 0" in str(e.value)
