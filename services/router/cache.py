"""The response cache (tier `minimal`): answers models gave, served again when no model can.

Shared by every router and surviving restarts: entries live in the `response-cache` KV bucket
(schemas/streams.py RESPONSE_CACHE), keyed by route + a hash of the normalized conversation.
Each router keeps an index per route in memory, fed by a watch on the bucket, so a lookup costs
no round trip and near-identical conversations are found with rapidfuzz (C, with early exits
on length) among that route's entries only, further narrowed to those with the same numbers.
Lookups happen only when the chain has failed; writes go through a bounded queue so that a
model's answer reaches the caller without waiting for the bucket.

Why the bucket and not SQL: the router has no database of its own and is on the bus anyway;
a KV watch gives every instance the same index without polling; the bucket's file storage
survives restarts, and its ttl bounds its size.
"""

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from pydantic import BaseModel, ValidationError
from rapidfuzz import fuzz, process, utils

from schemas.completion import Message
from schemas.streams import RESPONSE_CACHE
from services.runtime.config import TiersConfig

log = logging.getLogger(__name__)

MAX_ENTRIES_PER_ROUTE = 20_000  # the index's bound per route; the oldest is forgotten first
WRITE_QUEUE = 1_000  # answers waiting to be stored; past that, new ones are not cached
_ROUTE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NUMBER = re.compile(r"\d+")


class CacheEntry(BaseModel):
    route: str
    text: str  # the normalized conversation
    content: str
    provider: str | None = None
    model: str | None = None
    stored_at: float  # unix seconds (wall clock: entries are shared between hosts)
    expires_at: float


def normalize(messages: Sequence[Message]) -> str:
    """The conversation as the cache sees it: roles kept, whitespace and case folded."""
    return "\n".join(f"{m.role}: {' '.join(m.content.split()).casefold()}" for m in messages)


def cache_key(route: str, text: str) -> str:
    token = route if _ROUTE_TOKEN.match(route) else "r" + hashlib.sha256(route.encode()).hexdigest()[:16]
    return f"{token}.{hashlib.sha256(text.encode()).hexdigest()}"


def numbers_of(text: str) -> tuple[str, ...]:
    """"Is order 123 shipped?" must never be answered with order 124's answer, however close."""
    return tuple(_NUMBER.findall(text))


class CacheIndex:
    """Entries by route, then by the numbers they contain. Pure: time is passed in."""

    def __init__(self, max_per_route: int = MAX_ENTRIES_PER_ROUTE) -> None:
        self.max_per_route = max_per_route
        self._entries: dict[str, CacheEntry] = {}  # key -> entry
        self._by_route: dict[str, dict[tuple[str, ...], dict[str, str]]] = {}  # -> key -> text
        self._order: dict[str, dict[str, None]] = {}  # route -> keys, oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, entry: CacheEntry) -> None:
        self.drop(key)
        self._entries[key] = entry
        # Compared without punctuation (rapidfuzz's default_process), processed once here.
        processed = utils.default_process(entry.text)
        self._by_route.setdefault(entry.route, {}).setdefault(numbers_of(entry.text), {})[key] = processed
        order = self._order.setdefault(entry.route, {})
        order[key] = None
        while len(order) > self.max_per_route:
            self.drop(next(iter(order)))

    def drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        groups = self._by_route[entry.route]
        sig = numbers_of(entry.text)
        groups[sig].pop(key, None)
        if not groups[sig]:
            del groups[sig]
        self._order[entry.route].pop(key, None)

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def lookup(self, route: str, text: str, *, similarity: float, now: float) -> CacheEntry | None:
        """The entry for this exact conversation, else the most similar one above `similarity`."""
        exact = self._entries.get(cache_key(route, text))
        if exact is not None and exact.expires_at > now:
            return exact
        if similarity >= 100:
            return None
        candidates = self._by_route.get(route, {}).get(numbers_of(text))
        query = utils.default_process(text)
        while candidates:
            best = process.extractOne(query, candidates, scorer=fuzz.ratio, processor=None,
                                      score_cutoff=similarity)
            if best is None:
                return None
            entry = self._entries[best[2]]
            if entry.expires_at > now:
                return entry
            self.drop(best[2])  # expired: forget it and look again
        return None


class ResponseCache:
    """The index plus the bucket: lookups, writes, and the watch that keeps the index current."""

    def __init__(self, config: TiersConfig, js: Callable[[], JetStreamContext],
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.js = js
        self.clock = clock  # wall clock, unix seconds
        self.index = CacheIndex()
        self._writes: asyncio.Queue[tuple[str, CacheEntry]] = asyncio.Queue(WRITE_QUEUE)
        self.dropped_writes = 0

    async def lookup(self, route: str, messages: Sequence[Message]) -> CacheEntry | None:
        policy = self.config.cache_for(route)
        if not policy.enabled:
            return None
        text, now = normalize(messages), self.clock()
        hit = self.index.lookup(route, text, similarity=policy.similarity, now=now)
        if hit is not None:
            return hit
        # The index may trail another router's write by a moment: ask the bucket for this key.
        try:
            kv = await self.js().key_value(RESPONSE_CACHE.name)
            entry = _parsed((await kv.get(cache_key(route, text))).value)
        except KeyNotFoundError:
            return None
        except (NatsError, TimeoutError) as e:
            log.warning("cache lookup for route %s failed: %r", route, e)
            return None
        return entry if entry is not None and entry.expires_at > now else None

    def remember(self, route: str, messages: Sequence[Message], content: str,
                 provider: str | None, model: str | None) -> None:
        """Queue the answer for the bucket (the caller does not wait for the write)."""
        policy = self.config.cache_for(route)
        if not policy.enabled or not content:
            return
        text, now = normalize(messages), self.clock()
        key = cache_key(route, text)
        known = self.index.get(key)
        if known is not None and known.expires_at - now > policy.ttl_s / 2:
            return  # stored recently: a popular question is not rewritten on every answer
        entry = CacheEntry(route=route, text=text, content=content, provider=provider, model=model,
                           stored_at=now, expires_at=now + policy.ttl_s)
        self.index.put(key, entry)  # this router serves it at once, before the watch echoes it
        try:
            self._writes.put_nowait((key, entry))
        except asyncio.QueueFull:
            self.dropped_writes += 1

    def on_change(self, key: str, value: bytes | None) -> None:
        """From the bucket's watch: another router's (or our own) write, or a deletion."""
        if value is None:
            self.index.drop(key)
            return
        entry = _parsed(value)
        if entry is not None:
            self.index.put(key, entry)

    async def write_forever(self) -> None:
        """Stores queued answers until cancelled; a failed write loses one cache entry, no more."""
        while True:
            key, entry = await self._writes.get()
            try:
                kv = await self.js().key_value(RESPONSE_CACHE.name)
                await kv.put(key, entry.model_dump_json().encode())
            except (NatsError, TimeoutError) as e:
                log.warning("cache entry for route %s not stored: %r", entry.route, e)

    async def flush(self, timeout: float) -> None:
        """Waits (up to `timeout` s) for queued writes, so a graceful stop keeps them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._writes.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)


def _parsed(value: bytes) -> CacheEntry | None:
    try:
        return CacheEntry.model_validate(json.loads(value))
    except (ValueError, ValidationError) as e:
        log.error("ignoring a bad response-cache entry: %s", e)
        return None
