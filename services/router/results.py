"""Where parked requests' answers go: llm.result.<request_id> (LLM_RESULTS), the caller's
callback URL, and the dead-letter subject for what cannot be answered."""

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from schemas import subjects
from schemas.completion import CompletionResult
from schemas.streams import LLM_QUEUE, LLM_RESULTS
from services.runtime.bus import MSG_ID
from services.runtime.config.tiers import DrainPolicy

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "Lifeline-Request-Id"
DELIVERIES_HEADER = "Lifeline-Deliveries"
QUEUED_SEQ_HEADER = "Lifeline-Queue-Seq"


class Results:
    def __init__(self, policy: DrainPolicy, js: Callable[[], JetStreamContext]) -> None:
        self.policy = policy
        self.js = js
        self._http: aiohttp.ClientSession | None = None

    async def existing(self, request_id: str) -> CompletionResult | None:
        """The answer already published for this request (a redelivery after a crash), if any."""
        try:
            msg = await self.js().get_last_msg(LLM_RESULTS.name, subjects.llm_result(request_id))
        except NotFoundError:
            return None
        try:
            return CompletionResult.model_validate_json(msg.data or b"")
        except ValidationError:  # something else sits on the subject: it still counts as answered
            return CompletionResult(request_id=request_id, status="error")

    async def publish(self, result: CompletionResult) -> None:
        """Stored in LLM_RESULTS before the queue message is acked; the id dedupes a retry."""
        await self.js().publish(subjects.llm_result(result.request_id),
                                result.model_dump_json().encode(),
                                headers={MSG_ID: result.request_id})

    async def dead_letter(self, subject: str, data: bytes, reason: str, *, msg_id: str,
                          request_id: str | None, deliveries: int, seq: int) -> None:
        headers = {MSG_ID: msg_id, subjects.DEADLETTER_REASON_HEADER: reason[:1000],
                   DELIVERIES_HEADER: str(deliveries), QUEUED_SEQ_HEADER: str(seq)}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        await self.js().publish(subjects.deadletter(subject), data, headers=headers)
        log.warning("dead-lettered %s (seq %d, request %s): %s", subject, seq, request_id, reason)

    async def dead_letter_stuck(self, seq: int, deliveries: int) -> bool:
        """The max-deliveries advisory's message: dead-letter it and take it out of the queue.

        A message that reached max_deliver stays in a work-queue stream; nothing else would ever
        remove it. Returns False if it is already gone (another router handled it).
        """
        js = self.js()
        try:
            msg = await js.get_msg(LLM_QUEUE.name, seq)
        except NotFoundError:
            return False
        data = msg.data or b""
        await self.dead_letter(
            msg.subject or subjects.LLM_QUEUE_PREFIX, data,
            f"delivered {deliveries} times without an answer (max_deliver); the last delivery "
            "was not acknowledged (a router died or stalled while holding it)",
            msg_id=f"deadletter.{seq}", request_id=None, deliveries=deliveries, seq=seq)
        try:
            await js.delete_msg(LLM_QUEUE.name, seq)
        except NotFoundError:
            pass
        return True

    async def post_callback(self, url: str, result: CompletionResult) -> bool:
        """POST the answer to the caller's URL: retried with backoff on 5xx, 408, 429 and
        connection errors; other 4xx are the receiver's final word. At least once: a receiver
        dedupes on request_id (a redelivery after a crash posts again)."""
        refusal = self.refusal(url)
        if refusal is not None:
            log.warning("callback for %s not sent: %s", result.request_id, refusal)
            return False
        http = self._session()
        delay = self.policy.callback_backoff_s
        body = result.model_dump_json().encode()
        headers = {"Content-Type": "application/json", REQUEST_ID_HEADER: result.request_id}
        for attempt in range(1, self.policy.callback_attempts + 1):
            try:
                async with http.post(url, data=body, headers=headers) as r:
                    if r.status < 300:
                        return True
                    if r.status < 500 and r.status not in (408, 429):
                        log.warning("callback for %s refused: HTTP %d", result.request_id, r.status)
                        return False
                    problem = f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = repr(e)
            log.info("callback for %s, attempt %d: %s", result.request_id, attempt, problem)
            if attempt < self.policy.callback_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        log.warning("callback for %s gave up after %d attempts", result.request_id,
                    self.policy.callback_attempts)
        return False

    def refusal(self, url: str) -> str | None:
        """Why this URL may not receive answers, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"callback_url must be an http(s) URL, not {url[:200]!r}"
        prefixes = self.policy.callback_url_prefixes
        if prefixes and not any(url.startswith(p) for p in prefixes):
            return "callback_url is outside tiers.queue.callback_url_prefixes"
        return None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.policy.callback_timeout_s))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()


def is_bus_error(e: BaseException) -> bool:
    return isinstance(e, (NatsError, TimeoutError))
