"""How a streamed answer is sent, healthy or dying: the stream fault modes of both wire formats.

After `cut_after` content chunks (a stream's first frames up to its first content are always sent):
- `cut`: the connection closes (a FIN, no end marker): a vendor dying mid-answer;
- `stall`: nothing more for `latency_ms` (the connection stays open), then it closes;
- `stream_error`: an error event inside the 200 (OpenAI's `data: {"error": ...}` followed by a
  `[DONE]` a naive client would take for a finished answer; Anthropic's `event: error`);
- `malformed_chunk`: one chunk that is not valid JSON, then the rest of the answer and its end
  marker, as if nothing happened.
`chunk_delay_ms` paces every stream's content frames, so a test can tell streaming from buffering.
"""

import asyncio
import socket
import struct
import time

from aiohttp import web

from services.simulator.logic import Decision, FaultSettings
from services.simulator.wire import WireFormat

SSE = "text/event-stream; charset=utf-8"
_STALL_POLL_S = 0.05  # how often a stall looks whether its client has gone


def close_connection(request: web.Request, *, reset: bool) -> None:
    """Drop the connection. `reset` sends a TCP RST (SO_LINGER 0) instead of a clean FIN."""
    transport = request.transport
    if transport is None:  # the client is already gone
        return
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()  # a FIN after what was written: the partial answer reaches the client


async def stall(request: web.Request, seconds: float) -> None:
    """Hold the connection without a byte, until `seconds` pass or the client leaves (aiohttp
    does not cancel a handler whose client left, and a test's teardown must not wait for it)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(_STALL_POLL_S, max(0.0, until - time.monotonic())))


def planned(frames: list[bytes], first_content: int, outcome: str, settings: FaultSettings,
            wire: WireFormat) -> tuple[list[bytes], bool]:
    """(the frames to send, whether the connection then dies instead of ending cleanly). Pure."""
    at = min(first_content + settings.cut_after, len(frames) - 1)  # never past the end marker
    if outcome in ("cut", "stall"):
        return frames[:at], True
    if outcome == "stream_error":
        return frames[:at] + wire.stream_error_frames(), False
    if outcome == "malformed_chunk":
        return frames[:at] + [wire.malformed_frame()] + frames[at:], False
    return frames, False


async def stream(request: web.Request, wire: WireFormat, frames: list[bytes], first_content: int,
                 decision: Decision, settings: FaultSettings, headers: dict[str, str]) -> web.StreamResponse:
    to_send, dies = planned(frames, first_content, decision.outcome, settings, wire)
    response = web.StreamResponse(headers={"Content-Type": SSE, "Cache-Control": "no-cache", **headers})
    await response.prepare(request)
    if decision.delay_s:  # slow: headers at once, then a long wait for the first token, like a real vendor
        await asyncio.sleep(decision.delay_s)
    pace = settings.chunk_delay_ms / 1000
    try:
        for i, frame in enumerate(to_send):
            if pace and i > first_content:
                await asyncio.sleep(pace)
            await response.write(frame)
    except ConnectionResetError:  # the client left mid-stream (a caller's own timeout): fine
        return response
    if decision.outcome == "stall":
        await stall(request, settings.latency_ms / 1000)
    if dies:
        close_connection(request, reset=False)
    else:
        await response.write_eof()
    return response
