"""Conditional routing (router/rules.py) and its config checks, which name file, line and field."""

import pytest

from schemas.completion import CompletionRequest
from services.router.rules import choose
from services.runtime.config import ConfigError, parse_config

BASE = """\
providers:
  a: {kind: openai, base_url: http://a, models: {m1: {input_per_mtok: 1, output_per_mtok: 2}}}
  b: {kind: anthropic, base_url: http://b, models: {big: {input_per_mtok: 3, output_per_mtok: 4, context_window: 200000}}}
  c: {kind: openai_compatible, base_url: http://c, models: {cheap: {input_per_mtok: 0, output_per_mtok: 0}}}
routes:
  chat:
    chain: [a/m1, b/big]
    downgrade_chain: [c/cheap]
    rules:
      - name: urgent
        when: {metadata: {priority: urgent}}
        strategy: least-latency
      - name: long prompts
        when: {min_prompt_tokens: 5000}
        chain: [b/big]
      - name: free tier
        when: {metadata: {tier: [free, trial]}, priority: interactive}
        chain: [c/cheap, a/m1]
        strategy: cost
      - when: {region: [eu, uk], max_prompt_tokens: 100}
        chain: [c/cheap]
"""
CHAT = parse_config(BASE).routes["chat"]


def req(**kw) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def test_no_rule_matching_keeps_the_route():
    c = choose(CHAT, req(), 10)
    assert (c.chain, c.strategy, c.rule, c.downgraded) == (["a/m1", "b/big"], "priority", None, False)


def test_urgent_requests_go_least_latency_on_the_same_chain():
    c = choose(CHAT, req(metadata={"priority": "urgent"}), 10)
    assert (c.chain, c.strategy, c.rule) == (["a/m1", "b/big"], "least-latency", "urgent")


def test_long_prompts_go_to_the_large_context_chain():
    assert choose(CHAT, req(), 4999).rule is None
    c = choose(CHAT, req(), 5000)
    assert (c.chain, c.rule) == (["b/big"], "long prompts")


def test_a_list_matches_any_of_its_values_and_every_condition_must_hold():
    assert choose(CHAT, req(metadata={"tier": "trial"}), 10).rule == "free tier"
    assert choose(CHAT, req(metadata={"tier": "free"}, priority="batch"), 10).rule is None
    assert choose(CHAT, req(metadata={"tier": "pro"}), 10).rule is None
    c = choose(CHAT, req(metadata={"tier": "free"}), 10)
    assert (c.chain, c.strategy) == (["c/cheap", "a/m1"], "cost")


def test_the_first_matching_rule_wins():
    c = choose(CHAT, req(metadata={"priority": "urgent", "tier": "free"}), 9000)
    assert c.rule == "urgent"


def test_an_unnamed_rule_is_named_by_its_position_and_region_lists_work():
    assert choose(CHAT, req(region="uk"), 50).rule == "rules[3]"
    assert choose(CHAT, req(region="uk"), 500).rule is None
    assert choose(CHAT, req(region="us"), 50).rule is None


def test_metadata_compares_as_text_so_json_and_yaml_types_meet():
    route = parse_config(BASE.replace("{priority: urgent}", "{vip: true, level: 2}")).routes["chat"]
    assert choose(route, req(metadata={"vip": True, "level": "2"}), 1).rule == "urgent"
    assert choose(route, req(metadata={"vip": "false", "level": 2}), 1).rule is None


def test_a_downgrade_overrides_the_rules_chain_but_keeps_its_strategy():
    c = choose(CHAT, req(metadata={"priority": "urgent"}), 10, downgraded=True)
    assert (c.chain, c.strategy, c.downgraded) == (["c/cheap"], "least-latency", True)


def test_a_downgrade_without_a_downgrade_chain_changes_nothing():
    route = parse_config(BASE.replace("    downgrade_chain: [c/cheap]\n", "")).routes["chat"]
    c = choose(route, req(), 10, downgraded=True)
    assert (c.chain, c.downgraded) == (["a/m1", "b/big"], False)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="x.yaml")
    return str(e.value)


def test_a_rule_chain_naming_an_unknown_model_names_its_line():
    text = BASE.replace("chain: [c/cheap, a/m1]", "chain: [c/cheap, a/m9]")
    msg = error_of(text)
    assert msg.startswith(f"x.yaml:{line_of(text, 'a/m9')}: routes.chat.rules.2.chain.1: ")
    assert "provider 'a' has no model 'm9'" in msg


def test_a_rule_with_an_empty_when_or_that_changes_nothing_is_refused():
    text = BASE.replace("when: {min_prompt_tokens: 5000}", "when: {}")
    assert error_of(text).startswith(f"x.yaml:{line_of(text, 'when: {}')}: routes.chat.rules.1.when: ")
    text = BASE.replace("        strategy: least-latency\n", "")
    msg = error_of(text)
    assert msg.startswith(f"x.yaml:{line_of(text, '- name: urgent')}: routes.chat.rules.0: ")
    assert "must set `chain`, `strategy` or both" in msg


def test_an_unknown_condition_and_an_unknown_strategy_are_named():
    text = BASE.replace("{min_prompt_tokens: 5000}", "{min_tokens: 5000}")
    assert f"x.yaml:{line_of(text, 'min_tokens')}: routes.chat.rules.1.when.min_tokens: Extra" in error_of(text)
    text = BASE.replace("strategy: least-latency", "strategy: fastest")
    assert "routes.chat.rules.0.strategy: Input should be 'priority', 'weighted', 'least-latency', " \
           "'cost' or 'headroom'" in error_of(text)


def test_weights_must_name_members_of_the_chain():
    text = BASE.replace("    chain: [a/m1, b/big]\n", "    chain: [a/m1, b/big]\n    weights: {c/cheap: 2}\n")
    msg = error_of(text)
    assert msg.startswith(f"x.yaml:{line_of(text, 'weights:')}: routes.chat.weights: ")
    assert "'c/cheap' is not in the chain" in msg
