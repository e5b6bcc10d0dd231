from pathlib import Path

import pytest

from services.runtime.config import ConfigError, load_config, parse_config

SHIPPED = Path(__file__).parents[2] / "lifeline.yaml"


def shipped_with(old: str, new: str) -> str:
    text = SHIPPED.read_text()
    assert old in text
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_config_is_valid_and_routes_chat_over_three_vendors():
    config = load_config(SHIPPED)
    assert config.routes["chat"].chain == [
        "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "local/llama-3.1-8b"]


def test_a_negative_price_names_its_line_and_field():
    text = shipped_with("gpt-4o: {input_per_mtok: 2.50", "gpt-4o: {input_per_mtok: -2.50")
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="x.yaml")
    assert str(e.value) == (
        f"x.yaml:{line_of(text, 'gpt-4o: {')}: providers.openai.models.gpt-4o.input_per_mtok: "
        "Input should be greater than or equal to 0")


def test_a_chain_member_with_an_unknown_model_names_the_chain_line():
    text = shipped_with("anthropic/claude-haiku-4-5, local", "anthropic/claude-9, local")
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="x.yaml")
    msg = str(e.value)
    assert msg.startswith(f"x.yaml:{line_of(text, 'chain:')}: routes.chat.chain.1: ")
    assert "provider 'anthropic' has no model 'claude-9' (known: claude-haiku-4-5)" in msg


def test_an_unknown_provider_and_a_typo_field_are_both_reported():
    text = shipped_with("attempt_timeout_ms: 5000", "atempt_timeout_ms: 5000")
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="x.yaml")
    assert f"x.yaml:{line_of(text, 'atempt_timeout_ms')}: routes.chat.atempt_timeout_ms: Extra inputs" in str(e.value)


def test_a_wrong_kind_lists_the_allowed_ones():
    text = shipped_with("kind: anthropic", "kind: bard")
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert "providers.anthropic.kind: Input should be 'openai', 'anthropic' or 'openai_compatible'" in str(e.value)


def test_broken_yaml_names_the_line():
    with pytest.raises(ConfigError, match=r"^x.yaml:3: not valid YAML: mapping values"):
        parse_config("providers:\n  a: 1\n  b: c: d\n", source="x.yaml")


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "nope.yaml")


def test_providers_without_a_key_are_served_by_the_simulator_and_a_key_wins():
    config = load_config(SHIPPED)
    specs = config.provider_specs({"ANTHROPIC_API_KEY": "sk-real"}, "http://sim:8410")
    assert specs["openai"].base_url == "http://sim:8410/openai/v1"
    assert specs["local"].base_url == "http://sim:8410/local/v1"
    assert specs["anthropic"].base_url == "https://api.anthropic.com"
    assert specs["anthropic"].api_key == "sk-real"
    assert "sk-real" not in repr(specs["anthropic"])
    assert config.simulated({"ANTHROPIC_API_KEY": "sk-real"}) == ["openai", "local"]
