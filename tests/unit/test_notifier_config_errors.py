"""The notifier section of lifeline.yaml: secrets by variable only, clear errors with lines."""

import pytest

from services.runtime.config import ConfigError, parse_config

BASE = """
providers:
  a: {kind: openai, base_url: http://a, models: {m: {input_per_mtok: 1, output_per_mtok: 1}}}
routes:
  chat: {chain: [a/m]}
"""


def errors(notifier: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(BASE + notifier)
    return str(e.value)


def test_the_shipped_defaults_load_and_an_old_file_without_the_section_too():
    assert parse_config(BASE).notifier.incidents.resolve_after_s == 120


def test_a_webhook_needs_exactly_one_url():
    assert "give exactly one of url and url_env" in errors(
        "notifier:\n  channels:\n    h: {kind: webhook}\n")


def test_email_needs_smtp_and_channel_names_are_plain():
    assert "add an smtp block" in errors("notifier:\n  channels:\n    m: {kind: email, to: [a@b.c]}\n")
    assert "channel name 'bus'" in errors("notifier:\n  channels:\n    bus: {kind: slack, url_env: X}\n")


def test_a_secret_written_inline_is_refused_with_its_line():
    message = errors("notifier:\n  channels:\n    s: {kind: slack, url: https://hooks.slack.com/x}\n")
    assert "lifeline.yaml:8" in message and "url" in message
