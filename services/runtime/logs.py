"""Structured logs: one JSON object a line, with the trace id, and no secrets.

python-json-logger does the formatting. Two filters run on every record: one adds the current
OpenTelemetry trace and span ids (so a log line finds its trace), one masks anything shaped like
a credential (API keys, bearer tokens) wherever it appears — defence in depth behind the rule
that code never logs a secret or message content in the first place.
"""

import logging
import re
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

# sk-... (OpenAI, Anthropic sk-ant-...), llk-... (the gateway's keys; ll-... too), bearer tokens,
# key=... pairs.
_SECRET = re.compile(
    r"(?P<prefix>\b(?:sk|llk|ll)-)[A-Za-z0-9_\-]{6,}"
    r"|(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9._~+/=\-]{6,}"
    r"|(?P<pair>\b(?:api[_-]?key|token|password|secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}",
)


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group("prefix") or m.group("bearer") or m.group("pair")) + "***",
                       text)


class TraceContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = f"{ctx.trace_id:032x}" if ctx.trace_id else None
        record.span_id = f"{ctx.span_id:016x}" if ctx.span_id else None
        return True


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            # A traceback shows what an exception carried (a URL, a header), so it is masked
            # too: formatted here and kept as exc_text, which both formatters print instead.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: str, *, fmt: str = "json", service: str | None = None) -> None:
    """Root logging for a service process. `fmt`: json (default) | text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContext())
    handler.addFilter(Redact())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service} if service else None,
        ))
    elif fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise ValueError(f"LIFELINE_LOG_FORMAT must be json or text, not {fmt!r}")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
