"""Micro-batching: what callers submit while a flush runs is flushed together next.

One SQL transaction then serves many concurrent requests (a burst of 200 reservations becomes a
handful of transactions), and a lone request is flushed at once, without waiting for company.
Written here because the pattern is a dozen lines and no maintained asyncio library offers it
with per-item results.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], *, max_size: int = 256,
                 name: str = "batcher") -> None:
        self._flush = flush
        self._max = max_size
        self._name = name
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:self._max], self._queue[self._max:]
                try:
                    results = await self._flush([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as e:  # handed to every caller of the batch, none forgotten
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # the caller may have given up (cancelled)
                        future.set_result(result)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
