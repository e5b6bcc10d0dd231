"""Service logs: JSON lines with the trace id, and credentials masked wherever they appear."""

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.runtime.logs import configure_logging, redact


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch):
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stderr", buffer)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", service="router/test-1")
    yield buffer
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_a_log_line_is_json_with_service_and_the_current_trace(captured: io.StringIO):
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handle") as span:
        logging.getLogger("services.router").info("answered %s", "r-1")
        trace_id = f"{span.get_span_context().trace_id:032x}"
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert line["message"] == "answered r-1"
    assert (line["level"], line["logger"], line["service"]) == ("INFO", "services.router", "router/test-1")
    assert line["trace_id"] == trace_id


@pytest.mark.parametrize("secret, shown", [
    ("calling with sk-proj-abcdefghijklmnop", "calling with sk-***"),
    ("key ll-9f8e7d6c5b4a3 revoked", "key ll-*** revoked"),
    ("gateway key llk-Zm9vYmFyYmF6cXV4cXV1eA_-12 refused", "gateway key llk-*** refused"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "Authorization: Bearer ***"),
    ('{"api_key": "abcd1234efgh"}', '{"api_key": "***"}'),
    ("token=s3cr3t-value and more", "token=*** and more"),
])
def test_credentials_are_masked(secret: str, shown: str, captured: io.StringIO):
    assert redact(secret) == shown
    logging.getLogger("x").warning("%s", secret)
    assert json.loads(captured.getvalue().splitlines()[-1])["message"] == shown


def test_ordinary_words_are_left_alone():
    text = "the skeleton task-runner finished; tokens used: 42"
    assert redact(text) == text


def test_a_traceback_is_masked_too(captured: io.StringIO):
    try:
        raise RuntimeError("POST failed with headers {'Authorization': 'Bearer sk-live-abcdefgh123'}")
    except RuntimeError:
        logging.getLogger("x").exception("vendor call failed")
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert "abcdefgh123" not in captured.getvalue()
    assert "RuntimeError" in line["exc_info"] and "Bearer ***" in line["exc_info"]
