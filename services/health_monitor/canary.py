"""Quality canaries: is an answer to a golden prompt right? Pure.

A 200 with the wrong content is the failure status codes never show ("the model got worse"); a few
prompts with checkable answers, asked rarely, catch it.
"""

import json
import re
from typing import Any

from services.runtime.config.health import CanaryCheck

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}
_decoder = json.JSONDecoder()


def check(spec: CanaryCheck, answer: str) -> str | None:
    """None if `answer` is right, else what was wrong (short, for evidence)."""
    text = answer.strip()
    if spec.expect == "exact":
        value = str(spec.value)
        got = text[:-1] if text.endswith(".") and not value.endswith(".") else text
        return None if got.strip("`\"' ") == value else f"{spec.name}: expected {value!r}, got {_short(text)}"
    if spec.expect == "regex":
        if re.search(str(spec.value), text):
            return None
        return f"{spec.name}: /{spec.value}/ not found in {_short(text)}"
    assert isinstance(spec.value, dict)  # validated by CanaryCheck
    found = first_json_object(text)
    if found is None:
        return f"{spec.name}: no JSON object in {_short(text)}"
    for key, type_name in spec.value.items():
        if key not in found:
            return f"{spec.name}: JSON has no {key!r}"
        if not _is(found[key], type_name):
            return f"{spec.name}: {key!r} is not a JSON {type_name}"
    return None


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`, wherever it starts (models wrap JSON in prose or fences)."""
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = _decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _is(value: Any, type_name: str) -> bool:
    types = _JSON_TYPES.get(type_name)
    if types is None:
        return False
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False  # JSON true is not a number, though Python's bool is an int
    return isinstance(value, types)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
