"""Conversation continuity: a session's earlier turns, fetched over the bus and put in front of
the request's messages, so whichever provider answers sees the whole conversation.

`BusHistory` is the History port (ports.py) as a request to `conversation.history.get`
(HistoryRequest -> HistoryReply), answered by the conversation store. The store is not on the
answer's critical path: if it is missing, slow or broken, the request goes on without history
after at most `timeout_s`, and that is logged once per outage, not once per request.
"""

import asyncio
import logging
from collections.abc import Callable

import nats
from nats.errors import Error as NatsError
from pydantic import ValidationError

from schemas import subjects
from schemas.completion import Message
from schemas.events import HistoryReply, HistoryRequest, Turn

log = logging.getLogger(__name__)


def flatten(turns: list[Turn]) -> list[Message]:
    """Earlier turns as messages, oldest first: what the caller sent in each, then the answer."""
    earlier: list[Message] = []
    for turn in turns:
        earlier += [Message(role=m["role"], content=m["content"])  # type: ignore[arg-type]
                    for m in turn.messages if m.get("role") in ("system", "user", "assistant", "tool")
                    and isinstance(m.get("content"), str)]
        if turn.content:
            earlier.append(Message(role="assistant", content=turn.content))
    return earlier


def conversation(earlier: list[Message], messages: list[Message]) -> list[Message]:
    """The earlier turns in front of this request's messages. Pure.

    A request that already carries assistant turns brings its own history (an OpenAI-style
    client resending the conversation): nothing is added, or every turn would appear twice.
    One system prompt is kept, first: the request's own, else the first the session had.
    """
    if not earlier or any(m.role == "assistant" for m in messages):
        return messages
    system = [m for m in messages if m.role == "system"] or [
        m for m in earlier if m.role == "system"][:1]
    return (system + [m for m in earlier if m.role != "system"]
            + [m for m in messages if m.role != "system"])


class BusHistory:
    def __init__(self, connection: Callable[[], nats.NATS], *, timeout_s: float = 0.2) -> None:
        self._connection = connection  # the router's own NATS connection, once it is up
        self._timeout_s = timeout_s
        self._failing = False  # so an outage of the store is logged once, not per request

    async def earlier_turns(self, session_id: str, *, limit: int | None = None) -> list[Message]:
        body = HistoryRequest(session_id=session_id, limit=limit).model_dump_json().encode()
        try:
            msg = await self._connection().request(
                subjects.CONVERSATION_HISTORY_GET, body, timeout=self._timeout_s)
            reply = HistoryReply.model_validate_json(msg.data)
        except (NatsError, asyncio.TimeoutError, ValidationError) as e:
            self._trouble(f"{type(e).__name__}: {e}")
            return []
        if reply.error is not None:
            self._trouble(f"the store says: {reply.error}")
            return []
        if self._failing:
            self._failing = False
            log.warning("conversation history is answering again")
        return flatten(reply.turns)

    def _trouble(self, why: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning("conversation history unavailable (%s): answering without it until it "
                        "is back", why)
