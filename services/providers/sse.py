"""Server-sent events, decoded line by line as they arrive (WHATWG HTML, "Parsing an event stream").

Our own, on purpose: it is twenty lines of the spec, pure and fed one line at a time, so the read
loop (streaming.py) keeps control of every timeout. The maintained parsers are tied to another
client (httpx-sse) or read the whole response themselves (aiohttp-sse-client, unmaintained since
2021); the official SDKs' decoders are private modules of test-only dependencies.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str | None  # None: the default type ("message"), as OpenAI sends every chunk
    data: str


class SseDecoder:
    """Feed lines (bytes, with or without their line ending); get an event at each blank line."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, raw: bytes) -> ServerSentEvent | None:
        line = raw.decode("utf-8").rstrip("\r\n")  # UnicodeDecodeError is the caller's "malformed"
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment: vendors' keep-alives
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value or None
        elif name == "data":
            self._data.append(value)
        # `id` and `retry` matter to browsers reconnecting; a chat stream is never resumed by id.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:  # an event with no data is not dispatched (spec)
            self._event = None
            return None
        event = ServerSentEvent(self._event, "\n".join(self._data))
        self._event, self._data = None, []
        return event

    @property
    def pending(self) -> bool:
        """An event was started but its closing blank line never came."""
        return bool(self._data)
