"""Small checks shared by the wire-format parsers: a 2xx body either is an answer or says what is wrong."""

import json
from typing import Any

from services.providers.errors import malformed


def json_object(raw: bytes, *, status: int) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both
        raise malformed(f"body is not JSON ({len(raw)} bytes)", status=status) from None
    if not isinstance(data, dict):
        raise malformed(f"body is a JSON {type(data).__name__}, not an object", status=status)
    return data


def usage_tokens(data: dict[str, Any], input_key: str, output_key: str, *, status: int) -> tuple[int, int]:
    usage = data.get("usage")
    if usage is None:
        # Some OpenAI-compatible servers omit usage; 0 is what they told us, and the router can
        # estimate. Wrong types below are a broken answer, not a missing one.
        return 0, 0
    if not isinstance(usage, dict):
        raise malformed("usage is not an object", status=status)
    input_tokens = usage.get(input_key) or 0
    output_tokens = usage.get(output_key) or 0
    if type(input_tokens) is not int or type(output_tokens) is not int:
        raise malformed(f"usage.{input_key} / usage.{output_key} are not integers", status=status)
    return input_tokens, output_tokens


def model_ids(raw: bytes, *, status: int) -> list[str]:
    """The ids of a models list: OpenAI's {"object": "list", "data": [{"id"}]} and Anthropic's
    {"data": [{"id", "type": "model"}], "has_more"} share this much."""
    data = json_object(raw, status=status).get("data")
    if not isinstance(data, list):
        raise malformed("no data[] in the models list", status=status)
    ids = [m.get("id") for m in data if isinstance(m, dict)]
    if len(ids) != len(data) or not all(isinstance(i, str) for i in ids):
        raise malformed("data[] holds an entry without a string id", status=status)
    return ids
